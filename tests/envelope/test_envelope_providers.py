"""Round trips on every provider, the encryption context bound, disabled keys, tampering and truncation."""

from __future__ import annotations

import io
import random
import re

import aws_encryption_sdk
import pytest
from aws_encryption_sdk import CommitmentPolicy
from aws_encryption_sdk.internal.formatting.deserialize import deserialize_header
from envelope_fixtures import PROVIDERS, aws_arn, call, new_key

from kubekms.envelope import (
    AWS_PROVIDER_ID,
    PROVIDER_ID,
    ContextMismatch,
    Envelope,
    InvalidMessage,
    KeyRef,
    Keyring,
    KeyUnusable,
    NoKeyCanDecrypt,
)
from kubekms.envelope.messages import MAX_FRAME_BYTES
from kubekms.providers import BackendConfig

CONTEXT = {"tenant": "acme", "purpose": "invoices"}
# each backend's refusal in its own words: the v1.0 wire's code, the other providers' reason
DISABLED = {"kubekms": r"KMS\.0209", "local": "key_disabled", "aws": "key_disabled", "gcp": "key_disabled"}
FRAME = 256 * 1024  # the tampering and truncation tests' frames (not the default size)


def header_of(message: bytes) -> object:
    header, _ = deserialize_header(io.BytesIO(message))
    return header


@pytest.mark.parametrize("provider", PROVIDERS)
def test_round_trip_records_the_key_and_binds_the_context(configs: dict[str, BackendConfig], provider: str) -> None:
    config = configs[provider]
    alias, key_id = new_key(config)
    plaintext = b"invoice 42 " * 5000
    with Keyring({"b": config}, [KeyRef("b", alias)]) as keyring:
        message = Envelope(keyring).encrypt(plaintext, CONTEXT)
    assert plaintext[:64] not in message

    header = header_of(message)
    assert header.encryption_context == CONTEXT  # type: ignore[attr-defined]
    (edk,) = header.encrypted_data_keys  # type: ignore[attr-defined]
    if provider == "aws":  # the SDK's own provider id and the key ARN: readable by any AWS Encryption SDK
        assert (edk.key_provider.provider_id, edk.key_provider.key_info) == (AWS_PROVIDER_ID, aws_arn(key_id).encode())
    else:  # the provider and the key id (not the alias, which may move)
        assert (edk.key_provider.provider_id, edk.key_provider.key_info) == (
            PROVIDER_ID,
            f"{provider}:{key_id}".encode(),
        )

    # a decryptor needs no key list: the message names its keys
    with Keyring({"anyname": config}) as keyring:
        envelope = Envelope(keyring)
        assert envelope.decrypt(message, required_context={"tenant": "acme"}) == plaintext
        with pytest.raises(ContextMismatch, match="tenant='other'"):
            envelope.decrypt(message, required_context={"tenant": "other"})


@pytest.mark.parametrize("provider", ["kubekms", "local", "aws", "gcp"])
def test_disabled_key_refuses_both_ways_with_the_reason(configs: dict[str, BackendConfig], provider: str) -> None:
    config = configs[provider]
    alias, key_id = new_key(config)
    with Keyring({"b": config}, [KeyRef("b", alias)]) as keyring:
        envelope = Envelope(keyring)
        message = envelope.encrypt(b"secret", CONTEXT)
        call(config, "disable_key", key_id)
        with pytest.raises(KeyUnusable, match=DISABLED[provider]):
            envelope.encrypt(b"more", CONTEXT)
        named = f"aws-kms {aws_arn(key_id)}" if provider == "aws" else f"{provider}:{key_id}"
        with pytest.raises(NoKeyCanDecrypt, match=rf"{re.escape(named)}.*{DISABLED[provider]}"):
            envelope.decrypt(message)


def test_unknown_key_and_missing_backend(configs: dict[str, BackendConfig]) -> None:
    alias, _ = new_key(configs["kubekms"])
    with (
        Keyring({"b": configs["kubekms"]}, [KeyRef("b", "no-such-alias")]) as keyring,
        pytest.raises(KeyUnusable, match="no-such-alias"),
    ):
        Envelope(keyring).encrypt(b"x", {})
    with Keyring({"b": configs["kubekms"]}, [KeyRef("b", alias)]) as keyring:
        message = Envelope(keyring).encrypt(b"x", {})
    with (
        Keyring({"l": configs["local"]}) as keyring,  # no backend of provider kubekms configured
        pytest.raises(NoKeyCanDecrypt, match="no backend of provider 'kubekms'"),
    ):
        Envelope(keyring).decrypt(message)


@pytest.fixture(scope="module")
def sealed(configs: dict[str, BackendConfig]) -> tuple[BackendConfig, bytes, bytes]:
    """A three-frame message under a kubekms key, and its plaintext."""
    config = configs["kubekms"]
    alias, _ = new_key(config)
    plaintext = random.Random(18).randbytes(2 * FRAME + 115_712)
    with Keyring({"b": config}, [KeyRef("b", alias)]) as keyring:
        return config, Envelope(keyring, frame_bytes=FRAME).encrypt(plaintext, CONTEXT), plaintext


def flipped(message: bytes, at: int) -> bytes:
    changed = bytearray(message)
    changed[at] ^= 0x01
    return bytes(changed)


def test_tampered_header_body_and_context_rejected(sealed: tuple[BackendConfig, bytes, bytes]) -> None:
    config, message, plaintext = sealed
    context_at = message.index(b"invoices")
    with Keyring({"b": config}) as keyring:
        envelope = Envelope(keyring)
        assert envelope.decrypt(message) == plaintext
        for position in (context_at, 3):  # header: nothing is released
            sink = io.BytesIO()
            with pytest.raises((InvalidMessage, NoKeyCanDecrypt)):
                envelope.decrypt_stream(io.BytesIO(flipped(message, position)), sink)
            assert sink.getvalue() == b""
        # body (second frame): only the frames before it, each authenticated, were released
        sink = io.BytesIO()
        with pytest.raises(InvalidMessage, match="authentication failed"):
            envelope.decrypt_stream(io.BytesIO(flipped(message, len(message) // 2)), sink)
        assert sink.getvalue() == plaintext[: FRAME * (len(sink.getvalue()) // FRAME)]
        assert len(sink.getvalue()) < len(message) // 2
        # the last byte of the final frame's tag
        with pytest.raises(InvalidMessage, match="authentication failed"):
            envelope.decrypt(flipped(message, len(message) - 1))


def test_truncated_message_rejected_at_every_cut(sealed: tuple[BackendConfig, bytes, bytes]) -> None:
    config, message, _ = sealed
    frame_end = FRAME + 1000  # inside the second frame
    with Keyring({"b": config}) as keyring:
        envelope = Envelope(keyring)
        for cut in (10, 200, frame_end, len(message) - 17, len(message) - 1):
            with pytest.raises(InvalidMessage):
                envelope.decrypt(message[:cut])


@pytest.mark.parametrize(
    ("signed", "suite"),
    [(False, "AES_256_GCM_HKDF_SHA512_COMMIT_KEY"), (True, "AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384")],
)
def test_committing_suites_signed_on_request(configs: dict[str, BackendConfig], signed: bool, suite: str) -> None:
    alias, _ = new_key(configs["local"])
    with Keyring({"b": configs["local"]}, [KeyRef("b", alias)]) as keyring:
        envelope = Envelope(keyring, signed=signed)
        message = envelope.encrypt(b"signed or not", {"k": "v"})
        assert header_of(message).algorithm.name == suite  # type: ignore[attr-defined]
        assert envelope.decrypt(message) == b"signed or not"
        if signed:  # the signature covers the whole message: its last byte is checked too
            with pytest.raises(InvalidMessage):
                envelope.decrypt(flipped(message, len(message) - 1))


def test_a_frame_larger_than_the_bound_is_refused_before_any_key_call(configs: dict[str, BackendConfig]) -> None:
    """The SDK holds a whole frame in memory: a foreign message's frame size must not decide our memory."""
    alias, _ = new_key(configs["local"])
    sdk = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    with Keyring({"b": configs["local"]}, [KeyRef("b", alias)]) as keyring:
        message, _ = sdk.encrypt(
            source=b"small", materials_manager=keyring.materials_manager, frame_length=MAX_FRAME_BYTES + 128
        )
        with pytest.raises(InvalidMessage, match=f"{MAX_FRAME_BYTES + 128:d} > {MAX_FRAME_BYTES:d}"):
            Envelope(keyring).decrypt(message)
