"""Huawei KMS operations the v1.0 wire does not offer, called through the real Huawei SDK: each is refused by name
and reason (KMS.0201, as an unknown path) instead of "unknown request path"."""

from __future__ import annotations

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
    UpdateKeyAliasRequest,
    UpdateKeyAliasRequestBody,
)
from test_sdk_lifecycle import create_key, describe, expect_error

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


def test_update_key_alias_is_refused_by_name_today(client: KmsClient, unique: KeyMaker) -> None:
    key_id = create_key(client, unique("renamed"))
    refused = expect_error(lambda: update_key_alias(client, key_id, unique("renamed-to")), 400, "KMS.0201")
    assert "update_key_alias is not offered" in refused.error_msg


@pytest.mark.xfail(strict=True, reason="routed to lead: the keystore cannot rename a key's key_alias "
                   "(Store.update_alias keeps a primary alias with its key); needs Backend.rename_key_alias, "
                   "then H7's wire maps update-key-alias onto it")  # fmt: skip
def test_update_key_alias_renames_the_keys_key_alias(client: KmsClient, unique: KeyMaker) -> None:
    key_id, renamed = create_key(client, unique("renamed")), unique("renamed-to")
    update_key_alias(client, key_id, renamed)
    assert describe(client, key_id).key_alias == renamed
