"""The real Huawei SDK against our server's v1.0 grants (create-grant, list-grants, list-retirable-grants,
revoke-grant, retire-grant: every official SDK offers them; they were KMS.0201). A grant names principals of the
server and allows Huawei's operations on one key to a principal whose key list does not name it; a grantee given
create-grant makes grants within its own; the retiring principal retires it, the key's manager revokes it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from huaweicloudsdkkms.v2 import (
    CancelGrantRequest,
    CancelSelfGrantRequest,
    CreateDatakeyRequest,
    CreateDatakeyRequestBody,
    CreateGrantRequest,
    CreateGrantRequestBody,
    CreateKeyRequest,
    CreateKeyRequestBody,
    KmsClient,
    ListGrantsRequest,
    ListGrantsRequestBody,
    ListRetirableGrantsRequest,
    ListRetirableGrantsRequestBody,
    RevokeGrantRequestBody,
)
from test_sdk_lifecycle import create_key, describe, expect_error

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server

KeyMaker = Callable[[str], str]
NO_KEY = "no-key-at-all"  # a key list naming nothing: what such a principal uses, a grant allows
APP_ACTIONS = ("create-datakey", "describe-key", "create-grant", "retire-grant", "list-retirable-grants")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    principals = [
        Principal("app", actions=APP_ACTIONS, keys=(NO_KEY,)),
        Principal("ops", actions=APP_ACTIONS, keys=(NO_KEY,)),
        Principal("reader", actions=("describe-key", "list-grants"), keys=("*",)),
    ]
    with kms_server(tmp_path_factory.mktemp("kms"), project_id="proj1", principals=principals) as running:
        yield running


def grant(client: KmsClient, key_id: str, grantee: str, operations: list[str], **extra: str) -> str:
    body = CreateGrantRequestBody(key_id=key_id, grantee_principal=grantee, operations=operations, **extra)
    return client.create_grant(CreateGrantRequest(body=body)).grant_id


def data_key(client: KmsClient, key_id: str) -> str:
    return client.create_datakey(CreateDatakeyRequest(body=CreateDatakeyRequestBody(key_id=key_id))).key_id


def test_a_grant_allows_its_operations_to_its_grantee_until_revoked(
    server: KMSServer, client: KmsClient, sdk_client: Callable[..., KmsClient], unique: KeyMaker
) -> None:
    key_id = create_key(client, unique("granted"))
    app = sdk_client(server, "app")
    expect_error(lambda: data_key(app, key_id), 403, "KMS.0306")
    grant_id = grant(client, key_id, "app", ["create-datakey", "encrypt-data"], name="app/datakeys",
                     retiring_principal="ops")  # fmt: skip
    assert data_key(app, key_id) == key_id
    expect_error(lambda: describe(app, key_id), 403, "KMS.0306")  # not granted

    (entry,) = client.list_grants(ListGrantsRequest(body=ListGrantsRequestBody(key_id=key_id))).grants
    assert (entry.grant_id, entry.key_id, entry.grantee_principal, entry.grantee_principal_type) == (
        grant_id, key_id, "app", "user")  # fmt: skip
    # the names the grant was made with: encrypt-data, not encrypt-datakey too (though both are kms:Encrypt)
    assert entry.operations == ["create-datakey", "encrypt-data"]
    assert (entry.name, entry.retiring_principal, entry.issuing_principal) == ("app/datakeys", "ops", "proj1")
    assert entry.creation_date.isdigit() and len(entry.creation_date) == 13

    revoke = RevokeGrantRequestBody(key_id=key_id, grant_id=grant_id)
    expect_error(lambda: app.cancel_grant(CancelGrantRequest(body=revoke)), 403, "KMS.0307")
    client.cancel_grant(CancelGrantRequest(body=revoke))
    expect_error(lambda: data_key(app, key_id), 403, "KMS.0306")
    expect_error(lambda: client.cancel_grant(CancelGrantRequest(body=revoke)), 404, "KMS.0207")


def test_the_retiring_principal_lists_and_retires_it(
    server: KMSServer, client: KmsClient, sdk_client: Callable[..., KmsClient], unique: KeyMaker
) -> None:
    key_id = create_key(client, unique("retired"))
    grant_id = grant(client, key_id, "app", ["create-datakey"], retiring_principal="ops")
    app, ops = sdk_client(server, "app"), sdk_client(server, "ops")
    retire = RevokeGrantRequestBody(key_id=key_id, grant_id=grant_id)
    expect_error(lambda: app.cancel_self_grant(CancelSelfGrantRequest(body=retire)), 403, "KMS.0306")  # grantee
    listed = ops.list_retirable_grants(ListRetirableGrantsRequest(body=ListRetirableGrantsRequestBody()))
    assert grant_id in [entry.grant_id for entry in listed.grants] and listed.truncated == "false"
    assert grant_id not in [
        entry.grant_id
        for entry in app.list_retirable_grants(ListRetirableGrantsRequest(body=ListRetirableGrantsRequestBody())).grants
    ]
    ops.cancel_self_grant(CancelSelfGrantRequest(body=retire))
    expect_error(lambda: data_key(app, key_id), 403, "KMS.0306")


def test_a_grantee_given_create_grant_grants_only_within_its_grant(
    server: KMSServer, client: KmsClient, sdk_client: Callable[..., KmsClient], unique: KeyMaker
) -> None:
    key_id = create_key(client, unique("delegated"))
    grant(client, key_id, "app", ["create-grant", "create-datakey"])
    app, ops = sdk_client(server, "app"), sdk_client(server, "ops")
    grant(app, key_id, "ops", ["create-datakey"])
    assert data_key(ops, key_id) == key_id
    expect_error(lambda: grant(app, key_id, "ops", ["describe-key"]), 403, "KMS.0306")  # beyond its own grant
    reader = sdk_client(server, "reader")
    listed = reader.list_grants(ListGrantsRequest(body=ListGrantsRequestBody(key_id=key_id, limit="1")))
    assert (len(listed.grants), listed.truncated, listed.next_marker, listed.total) == (1, "true", "1", 2)


@pytest.mark.parametrize(
    ("operations", "extra"),
    [(["create-grant"], {}), (["rotate-key"], {}), (["create-datakey"], {"grantee_principal_type": "domain"}),
     (["create-datakey"], {"name": "no spaces"})],
)  # fmt: skip
def test_grants_huawei_refuses(
    client: KmsClient, unique: KeyMaker, operations: list[str], extra: dict[str, str]
) -> None:
    key_id = create_key(client, unique("refused"))
    expect_error(lambda: grant(client, key_id, "app", operations, **extra), 400, "KMS.0308")


def test_a_grant_fits_its_key(client: KmsClient, unique: KeyMaker) -> None:
    body = CreateKeyRequestBody(key_alias=unique("ec"), key_spec="EC_P256")
    key_id = client.create_key(CreateKeyRequest(body=body)).key_info.key_id
    expect_error(lambda: grant(client, key_id, "app", ["encrypt-datakey"]), 400, "KMS.0308")
    assert grant(client, key_id, "app", ["sign", "get-publickey"])
