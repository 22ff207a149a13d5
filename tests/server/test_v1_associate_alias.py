"""The real Huawei SDK against our server's v1.0 alias/associate (AssociateAlias in every official SDK; it was
KMS.0201): the alias moves to target_key_id as the AWS wire's UpdateAlias moves one — permission update-alias on
both keys, only between keys of one type and usage, never a key's primary alias (key_alias) nor a reserved one."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from huaweicloudsdkkms.v2 import (
    AssociateAliasRequest,
    AssociateAliasRequestBody,
    CreateAliasRequest,
    CreateAliasRequestBody,
    CreateKeyRequest,
    CreateKeyRequestBody,
    KmsClient,
    ListAliasesRequest,
)
from test_sdk_lifecycle import create_key, describe, expect_error

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server

KeyMaker = Callable[[str], str]
SOURCE, TARGET = "assoc-source", "assoc-target"  # the keys principal "source-only" may use (by these aliases)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    principals = [
        Principal("source-only", actions=("update-alias",), keys=(SOURCE,)),
        Principal("both", actions=("update-alias",), keys=(SOURCE, TARGET)),
        Principal("no-permission", actions=("create-alias",)),
    ]
    with kms_server(tmp_path_factory.mktemp("kms"), project_id="proj1", principals=principals) as running:
        yield running


def associate(client: KmsClient, alias: str, target: str) -> tuple[str, str, str]:
    body = AssociateAliasRequestBody(alias=alias, target_key_id=target)
    answer = client.associate_alias(AssociateAliasRequest(body=body))
    return answer.key_id, answer.alias, answer.alias_urn


def aliases_of(client: KmsClient, key_id: str) -> list[str]:
    (page,) = client.list_aliases(ListAliasesRequest(key_id=key_id)).body
    return [entity.alias for entity in page.aliases]


def add_alias(client: KmsClient, key_id: str, alias: str) -> None:
    client.create_alias(CreateAliasRequest(body=CreateAliasRequestBody(key_id=key_id, alias=alias)))


def test_an_alias_moves_to_the_target_key(client: KmsClient, unique: KeyMaker) -> None:
    first, second = create_key(client, unique("first")), create_key(client, unique("second"))
    moving = unique("moving")
    add_alias(client, first, moving)
    assert associate(client, moving, second) == (second, moving, f"kms:proj1:alias/{moving}")
    assert moving not in aliases_of(client, first) and moving in aliases_of(client, second)
    assert describe(client, moving).key_id == second
    assert associate(client, moving, second)[0] == second  # to the key it names already: nothing changes


def test_what_cannot_move(client: KmsClient, unique: KeyMaker) -> None:
    primary = unique("primary")
    first, second = create_key(client, primary), create_key(client, unique("other"))
    expect_error(lambda: associate(client, primary, second), 400, "KMS.0308")  # a key's key_alias stays with it
    expect_error(lambda: associate(client, unique("none-such"), second), 404, "KMS.0207")
    expect_error(lambda: associate(client, "gcp/reserved", second), 400, "KMS.1101")
    moving = unique("typed")
    add_alias(client, first, moving)
    body = CreateKeyRequestBody(key_alias=unique("signing"), key_spec="EC_P256")
    signing = client.create_key(CreateKeyRequest(body=body)).key_info.key_id
    expect_error(lambda: associate(client, moving, signing), 400, "KMS.1101")  # symmetric -> asymmetric
    assert describe(client, moving).key_id == first


def test_the_permission_is_update_alias_on_both_keys(
    server: KMSServer, client: KmsClient, sdk_client: Callable[..., KmsClient], unique: KeyMaker
) -> None:
    source, target = create_key(client, SOURCE), create_key(client, TARGET)
    moving = unique("guarded")
    add_alias(client, source, moving)
    expect_error(lambda: associate(sdk_client(server, "no-permission"), moving, target), 403, "KMS.0307")
    expect_error(lambda: associate(sdk_client(server, "source-only"), moving, target), 403, "KMS.0306")
    assert describe(client, moving).key_id == source
    assert associate(sdk_client(server, "both"), moving, target)[0] == target
    # back again: the alias now names a key "source-only" may not use
    expect_error(lambda: associate(sdk_client(server, "source-only"), moving, source), 403, "KMS.0306")
