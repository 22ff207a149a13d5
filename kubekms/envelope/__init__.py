"""Envelope encryption for applications, in the AWS Encryption SDK's message format, on every backend.

Built on the ``aws-encryption-sdk`` library (the message format is the SDK's, never written
here): :class:`Keyring` turns kubekms backends into the SDK's master keys, :class:`Envelope`
encrypts and decrypts streams under it. Example::

    backends = {"onprem": BackendConfig(provider="kubekms", endpoint=..., credentials_file=...),
                "dr": BackendConfig(provider="aws", region="eu-central-1")}
    keys = [KeyRef("onprem", "payments"), KeyRef("dr", "alias/payments-dr")]
    with Keyring(backends, keys) as keyring:
        envelope = Envelope(keyring, cache=CachePolicy(max_age=300, max_messages=1000))
        message = envelope.encrypt(b"...", {"tenant": "a"})
        plaintext = envelope.decrypt(message, required_context={"tenant": "a"})

The SDK is synchronous, the backend protocol async: the keyring runs the backends on an event
loop of its own, on a thread it owns (:mod:`kubekms.envelope.loop`), so these calls may come
from any thread, but not from a coroutine on another loop without ``asyncio.to_thread``.
"""

from kubekms.envelope.errors import (
    BackendUnavailable,
    ContextMismatch,
    EnvelopeError,
    InvalidMessage,
    InvalidRequest,
    KeyUnusable,
    NoKeyCanDecrypt,
)
from kubekms.envelope.keyring import KeyRef, Keyring
from kubekms.envelope.keys import AWS_PROVIDER_ID, PROVIDER_ID
from kubekms.envelope.messages import FRAME_BYTES, CachePolicy, Envelope

__all__ = [
    "AWS_PROVIDER_ID",
    "FRAME_BYTES",
    "PROVIDER_ID",
    "BackendUnavailable",
    "CachePolicy",
    "ContextMismatch",
    "Envelope",
    "EnvelopeError",
    "InvalidMessage",
    "InvalidRequest",
    "KeyRef",
    "KeyUnusable",
    "Keyring",
    "NoKeyCanDecrypt",
]
