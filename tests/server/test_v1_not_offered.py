"""Huawei KMS operations the v1.0 wire does not offer, called through the real Huawei SDK: each is refused by name
and reason (KMS.0201, as an unknown path) instead of "unknown request path"."""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable

import pytest
from huaweicloudsdkkms.v2 import (
    CreateDatakeyCapsuleRequest,
    CreateDatakeyCapsuleRequestBody,
    CreatePinRequest,
    CreatePinRequestBody,
    DeleteKeyPolicyRequest,
    DeriveSharedSecretRequest,
    DeriveSharedSecretRequestBody,
    KmsClient,
    ListAccessPointRequest,
    ListKeyPolicyRequest,
    ListKeyStoresRequest,
    ListSupportRegionsRequest,
    ShowVersionRequest,
    ShowVersionsRequest,
    UpdateKeyAliasRequest,
    UpdateKeyAliasRequestBody,
)
from test_sdk_lifecycle import create_key, describe, expect_error

from kubekms.devenv.kmsserver import KMSServer
from kubekms.errors import NotFound
from kubekms.server.v1_not_offered import refusal_for_path
from kubekms.server.v1_versions import version_answer, versions_answer

KeyMaker = Callable[[str], str]
KEY = "00000000-0000-4000-8000-000000000000"

NOT_OFFERED: dict[str, Callable[[KmsClient], object]] = {
    "access points": lambda c: c.list_access_point(ListAccessPointRequest()),
    "create_pin": lambda c: c.create_pin(CreatePinRequest(body=CreatePinRequestBody())),
    "create_datakey_capsule": lambda c: c.create_datakey_capsule(
        CreateDatakeyCapsuleRequest(body=CreateDatakeyCapsuleRequestBody(key_id=KEY, datakey_length="256"))
    ),
    "derive_shared_secret": lambda c: c.derive_shared_secret(
        DeriveSharedSecretRequest(body=DeriveSharedSecretRequestBody(key_id=KEY, public_key="AA=="))
    ),
    "key-policies (create/list": lambda c: c.list_key_policy(ListKeyPolicyRequest()),
    "key-policies (create/list/show": lambda c: c.delete_key_policy(DeleteKeyPolicyRequest(policy_id="p1")),
}


@pytest.mark.parametrize("operation", sorted(NOT_OFFERED))
def test_an_operation_not_offered_is_refused_by_name(client: KmsClient, operation: str) -> None:
    refused = expect_error(lambda: NOT_OFFERED[operation](client), 400, "KMS.0201")
    assert f"Huawei's {operation}" in refused.error_msg and "is not offered by kubekms: " in refused.error_msg


def test_an_operation_not_offered_is_not_called_an_unknown_path(client: KmsClient) -> None:
    refused = expect_error(lambda: client.create_pin(CreatePinRequest(body=CreatePinRequestBody())), 400, "KMS.0201")
    assert "unknown request path" not in refused.error_msg


def update_key_alias(client: KmsClient, key_id: str, alias: str) -> object:
    return client.update_key_alias(
        UpdateKeyAliasRequest(body=UpdateKeyAliasRequestBody(key_id=key_id, key_alias=alias))
    )


def test_update_key_alias_renames_the_keys_key_alias(client: KmsClient, unique: KeyMaker) -> None:
    """Offered since session 9 (tests/server/test_v1_update_alias.py holds its rules): no longer refused by name."""
    key_id, renamed = create_key(client, unique("renamed")), unique("renamed-to")
    update_key_alias(client, key_id, renamed)
    assert describe(client, key_id).key_alias == renamed


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("/v1.0/proj1/keystores", "key stores"),
        ("/v1.0/proj1/keystores/ks-1/enable", "key stores"),
        ("/v2/proj1/kms/keys/k1/replicate", "cross-region keys"),
        ("/v2/proj1/kms/keys/k1/update-primary-region", "cross-region keys"),
        ("/v2/proj1/kms/regions", "list_support_regions"),
    ],
)
def test_huawei_paths_outside_the_wire_have_their_refusal_ready(path: str, named: str) -> None:
    refusal = refusal_for_path(path)
    assert refusal is not None and refusal.code == "KMS.0201"
    assert f"Huawei's {named}" in str(refusal) and "is not offered by kubekms: " in str(refusal)


@pytest.mark.parametrize("path", ["/v1.0/proj1/kms/create-key", "/v2/proj1/kms/keys", "/v1.0/proj1/keystoresx", "/"])
def test_other_paths_have_no_refusal_of_their_own(path: str) -> None:
    assert refusal_for_path(path) is None


def test_version_discovery_answers_v1_only() -> None:
    detail = versions_answer("http://127.0.0.1:8443")["versions"][0]
    assert (detail["id"], detail["status"], detail["links"]) == (
        "v1.0", "CURRENT", [{"href": "http://127.0.0.1:8443/v1.0/", "rel": "self"}])  # fmt: skip
    assert version_answer("v1.0", "http://h")["version"]["id"] == "v1.0"
    with pytest.raises(NotFound):
        version_answer("v2", "http://h")


def test_key_stores_and_regions_are_refused_by_name_through_the_sdk(client: KmsClient) -> None:
    for call in (lambda: client.list_key_stores(ListKeyStoresRequest()),
                 lambda: client.list_support_regions(ListSupportRegionsRequest())):  # fmt: skip
        assert "is not offered by kubekms" in expect_error(call, 400, "KMS.0201").error_msg


def test_the_sdk_discovers_version_v1(client: KmsClient) -> None:
    assert [v.id for v in client.show_versions(ShowVersionsRequest()).versions] == ["v1.0"]
    assert client.show_version(ShowVersionRequest(version_id="v1.0")).version["id"] == "v1.0"


def test_version_discovery_is_unsigned_echoes_no_host_and_refuses_other_versions(server: KMSServer) -> None:
    """GET / and GET /{version_id} answer without a signature; the Host a client sends is not written into the
    links (a cache or a client following them must not be sent elsewhere); another version is NotFound."""
    listed = _get(server, "/", host="attacker.example")
    assert listed[0] == 200 and "attacker.example" not in listed[1]
    assert json.loads(listed[1])["versions"][0]["links"] == [{"href": "/v1.0/", "rel": "self"}]
    assert _get(server, "/v1.0/")[0] == 200
    status, body = _get(server, "/v2")
    assert status == 404 and "v1.0" in json.loads(body)["error"]["error_msg"]


def _get(server: KMSServer, path: str, *, host: str | None = None) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.putrequest("GET", path, skip_host=host is not None)
        if host is not None:
            connection.putheader("Host", host)
        connection.endheaders()
        answer = connection.getresponse()
        return answer.status, answer.read().decode()
    finally:
        connection.close()
