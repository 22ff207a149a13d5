"""The keystore seals within the limits its caller's wire gives (rules.SealLimits): AWS's 4096 bytes of plaintext and
8192 of AAD unless told otherwise; the Cloud KMS wire says 64 KiB of each, on the same code path."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kubekms.errors import InvalidArgument, Reason
from kubekms.keystore import Keystore, rules

KIB64 = rules.SealLimits(plaintext=65536, aad=65536)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Keystore]:
    keystore = Keystore(tmp_path / "ks", init=True)
    yield keystore
    keystore.close()


def _refusal(call: Callable[[], object]) -> Reason:
    with pytest.raises(InvalidArgument) as refused:
        call()
    return refused.value.reason


def test_the_default_limits_are_aws_encrypts(store: Keystore) -> None:
    key_id = store.create_key("default-limits").key_id
    sealed = store.encrypt_data_key(key_id, b"p" * 4096, aad=b"a" * 8192).ciphertext
    assert store.decrypt_data_key(key_id, sealed, aad=b"a" * 8192) == b"p" * 4096
    assert _refusal(lambda: store.encrypt_data_key(key_id, b"p" * 4097)) is Reason.PLAINTEXT_LENGTH_INVALID
    assert _refusal(lambda: store.encrypt_data_key(key_id, b"p", aad=b"a" * 8193)) is Reason.AAD_INVALID
    assert _refusal(lambda: store.decrypt_data_key(key_id, sealed, aad=b"a" * 8193)) is Reason.AAD_INVALID


def test_a_caller_s_limits_replace_them_both_ways(store: Keystore) -> None:
    key_id = store.create_key("wire-limits").key_id
    plaintext, aad = bytes(range(256)) * 256, b"a" * 65536
    sealed = store.encrypt_data_key(key_id, plaintext, aad=aad, limits=KIB64).ciphertext
    assert store.decrypt_data_key(key_id, sealed, aad=aad, limits=KIB64) == plaintext
    # sealed with the larger limits, opened only by a caller that gives them
    assert _refusal(lambda: store.decrypt_data_key(key_id, sealed, aad=aad)) is Reason.AAD_INVALID
    too_long = b"p" * 65537
    assert _refusal(lambda: store.encrypt_data_key(key_id, too_long, limits=KIB64)) is Reason.PLAINTEXT_LENGTH_INVALID
    assert _refusal(lambda: store.encrypt_data_key(key_id, b"", limits=KIB64)) is Reason.PLAINTEXT_LENGTH_INVALID
