"""AWS's quotas and absent features answered as AWS answers them, not silently ignored.

A key holds at most 50 aliases (AWS's quota: CreateAlias and UpdateAlias then answer
LimitExceededException; on every wire, it is the keystore's rule). This server has no custom key
stores: CreateKey and GenerateRandom naming one are CustomKeyStoreNotFoundException (before, the
CustomKeyStoreId was ignored: a key meant for the caller's HSM was made in the keystore).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aws_refusal_support import refused

from kubekms.devenv.kmsserver import kms_server

MAX_ALIASES = 50


@pytest.fixture(scope="module")
def kms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with kms_server(tmp_path_factory.mktemp("kms"), project_id="default") as running:
        yield running.aws_client()


def test_a_key_holds_at_most_50_aliases(kms: Any) -> None:
    key_id, other = (kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(2))
    for index in range(MAX_ALIASES):
        kms.create_alias(AliasName=f"alias/full-{index}", TargetKeyId=key_id)
    kms.create_alias(AliasName="alias/elsewhere", TargetKeyId=other)
    assert refused(lambda: kms.create_alias(AliasName="alias/one-more", TargetKeyId=key_id)) == (
        "LimitExceededException"
    )
    assert refused(lambda: kms.update_alias(AliasName="alias/elsewhere", TargetKeyId=key_id)) == (
        "LimitExceededException"
    )
    assert kms.describe_key(KeyId="alias/elsewhere")["KeyMetadata"]["KeyId"] == other
    kms.update_alias(AliasName="alias/full-0", TargetKeyId=key_id)  # already its own: no new alias
    kms.delete_alias(AliasName="alias/full-0")
    kms.update_alias(AliasName="alias/elsewhere", TargetKeyId=key_id)
    assert len(kms.list_aliases(KeyId=key_id, Limit=100)["Aliases"]) == MAX_ALIASES


def test_custom_key_stores_are_not_found(kms: Any) -> None:
    keys_before = len(kms.list_keys()["Keys"])
    with pytest.raises(kms.exceptions.CustomKeyStoreNotFoundException):
        kms.create_key(CustomKeyStoreId="cks-1234567890abcdef0")
    with pytest.raises(kms.exceptions.CustomKeyStoreNotFoundException):
        kms.generate_random(NumberOfBytes=16, CustomKeyStoreId="cks-1234567890abcdef0")
    assert len(kms.list_keys()["Keys"]) == keys_before
