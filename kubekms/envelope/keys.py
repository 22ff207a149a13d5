"""Master keys of the AWS Encryption SDK over kubekms backends.

Two kinds, chosen by the backend's provider:

- ``local``, ``kubekms``, ``huaweicloud`` (and any later protocol provider): a
  :class:`ProtocolMasterKey` wraps the message's data key with the backend protocol's
  ``create_data_key`` (first key: the backend makes the data key) or ``encrypt_data_key``
  (further keys), and unwraps it with ``decrypt_data_key``. The message's encryption context
  is bound as the protocol's aad: ``esdk-ec-sha256:`` + the SHA-256 (hex) of the context as
  canonical JSON (sorted keys, no spaces), which fits every wire's aad limit (128 bytes on
  the v1.0 wire). The SDK's provider id is ``kubekms``; the key info is
  ``<provider>:<key id>`` with the key id the backend answered (never an alias, which may
  move), so a decryptor tries exactly the configured backends of that provider.
- ``aws``: the SDK's own ``aws-kms`` master key (KMSMasterKey: GenerateDataKey / Encrypt /
  Decrypt with the encryption context as the KMS EncryptionContext, key info = key ARN), on
  a boto3 client built from the backend's config. The protocol cannot carry a context map
  (the aws provider binds aad as one ``kubekms:aad`` entry), and any other choice would make
  our messages unreadable for every other AWS Encryption SDK and theirs for us.

Why a data key could not be unwrapped is collected per message (:func:`recording_failures`),
so that "no key can decrypt" can say, e.g., that a key is disabled.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

import attr
import botocore.exceptions
from aws_encryption_sdk.exceptions import DecryptKeyError, EncryptKeyError, GenerateKeyError, InvalidKeyIdError
from aws_encryption_sdk.identifiers import Algorithm
from aws_encryption_sdk.key_providers.base import (
    MasterKey,
    MasterKeyConfig,
    MasterKeyProvider,
    MasterKeyProviderConfig,
)
from aws_encryption_sdk.key_providers.kms import KMSMasterKey
from aws_encryption_sdk.structures import DataKey, EncryptedDataKey, MasterKeyInfo

from kubekms.backend import Backend
from kubekms.envelope.errors import BackendUnavailable, EnvelopeError, KeyUnusable
from kubekms.envelope.loop import LoopThread
from kubekms.errors import KMSError
from kubekms.providers.aws_mapping import map_client_error

T = TypeVar("T")

PROVIDER_ID = "kubekms"
AWS_PROVIDER_ID = "aws-kms"  # the SDK's, so that messages interoperate with every AWS Encryption SDK
AAD_PREFIX = b"esdk-ec-sha256:"

_failures: ContextVar[list[str] | None] = ContextVar("kubekms_envelope_failures", default=None)


@contextlib.contextmanager
def recording_failures() -> Iterator[list[str]]:
    """Collect, for the calls made inside, why each attempt to unwrap a data key failed."""
    failures: list[str] = []
    token = _failures.set(failures)
    try:
        yield failures
    finally:
        _failures.reset(token)


def _record(reason: str) -> None:
    failures = _failures.get()
    if failures is not None:
        failures.append(reason)


def context_aad(encryption_context: Mapping[str, str]) -> bytes:
    canonical = json.dumps(dict(encryption_context), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return AAD_PREFIX + hashlib.sha256(canonical.encode()).hexdigest().encode()


def key_failure(where: str, error: KMSError) -> EnvelopeError:
    """A backend's refusal on encryption: the caller's key problem, or the backend's availability."""
    text = f"{where}: {error.identifier}: {error.message}"
    return BackendUnavailable(text) if error.retryable else KeyUnusable(text)


@dataclass(frozen=True)
class OpenBackend:
    """A protocol backend opened on the keyring's loop thread, under the name the caller gave it."""

    name: str
    provider: str
    backend: Backend
    loop: LoopThread
    timeout: float

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self.loop.run(coroutine, self.timeout)


@attr.s(hash=True)
class ProtocolMasterKeyConfig(MasterKeyConfig):  # type: ignore[misc]
    """``key_ref``: what the backend is asked for; ``candidates``: the backends to ask, in order."""

    provider_id = PROVIDER_ID
    key_ref: str = attr.ib(hash=True, validator=attr.validators.instance_of(str))
    candidates: tuple[OpenBackend, ...] = attr.ib(hash=False, eq=False, converter=tuple)


class ProtocolMasterKey(MasterKey):  # type: ignore[misc]
    provider_id = PROVIDER_ID
    _config_class = ProtocolMasterKeyConfig

    def __init__(self, **kwargs: Any) -> None:  # the SDK's __new__ consumed the config
        self._where = self.key_id.decode(errors="replace")

    def _info(self, backend: OpenBackend, key_id: str) -> MasterKeyInfo:
        return MasterKeyInfo(provider_id=PROVIDER_ID, key_info=f"{backend.provider}:{key_id}".encode())

    def _generate_data_key(self, algorithm: Algorithm, encryption_context: Mapping[str, str]) -> DataKey:
        backend = self.config.candidates[0]
        try:
            data_key = backend.call(
                backend.backend.create_data_key(
                    self.config.key_ref, length=algorithm.kdf_input_len, aad=context_aad(encryption_context)
                )
            )
        except KMSError as error:
            raise key_failure(f"key {self._where}", error) from None
        if data_key.plaintext is None:
            raise BackendUnavailable(f"key {self._where}: the backend returned a data key without its plaintext")
        return DataKey(
            key_provider=self._info(backend, data_key.key_id),
            data_key=data_key.plaintext,
            encrypted_data_key=data_key.ciphertext,
        )

    def _encrypt_data_key(
        self, data_key: DataKey, algorithm: Algorithm, encryption_context: Mapping[str, str]
    ) -> EncryptedDataKey:
        backend = self.config.candidates[0]
        try:
            wrapped = backend.call(
                backend.backend.encrypt_data_key(
                    self.config.key_ref, data_key.data_key, aad=context_aad(encryption_context)
                )
            )
        except KMSError as error:
            raise key_failure(f"key {self._where}", error) from None
        return EncryptedDataKey(key_provider=self._info(backend, wrapped.key_id), encrypted_data_key=wrapped.ciphertext)

    def _decrypt_data_key(
        self, encrypted_data_key: EncryptedDataKey, algorithm: Algorithm, encryption_context: Mapping[str, str]
    ) -> DataKey:
        if not self.config.candidates:
            provider = self.config.key_id.decode(errors="replace").partition(":")[0]
            _record(f"{self._where}: no backend of provider {provider!r} configured")
            raise DecryptKeyError("no backend for this key")
        for backend in self.config.candidates:
            try:
                plaintext = backend.call(
                    backend.backend.decrypt_data_key(
                        self.config.key_ref,
                        encrypted_data_key.encrypted_data_key,
                        aad=context_aad(encryption_context),
                    )
                )
            except KMSError as error:
                _record(f"{self._where} on backend {backend.name}: {error.identifier}: {error.message}")
                continue
            return DataKey(
                key_provider=self.key_provider,
                data_key=plaintext,
                encrypted_data_key=encrypted_data_key.encrypted_data_key,
            )
        raise DecryptKeyError("no configured backend could unwrap this data key")


@attr.s(hash=True)
class ProtocolKeysConfig(MasterKeyProviderConfig):  # type: ignore[misc]
    """``accepted``: None tries every key a message names (discovery); else only these
    ``<backend name>:<key id>`` (the SDK's strict mode)."""

    backends: tuple[OpenBackend, ...] = attr.ib(hash=False, eq=False, converter=tuple)
    accepted: frozenset[str] | None = attr.ib(default=None, hash=False, eq=False)


def _refuse_unaccepted(key_info: str) -> None:
    _record(f"{key_info}: not one of the keys this decryption accepts (--key)")
    raise InvalidKeyIdError("key not accepted")


class ProtocolKeys(MasterKeyProvider):  # type: ignore[misc]
    """The root provider: holds the encryption master keys as members, and on decryption makes a
    master key for each ``kubekms`` key info it meets, over the backends of that provider."""

    provider_id = PROVIDER_ID
    _config_class = ProtocolKeysConfig

    def __init__(self, **kwargs: Any) -> None:
        pass

    def _new_master_key(self, key_id: bytes) -> ProtocolMasterKey:
        provider, separator, ref = key_id.decode(errors="replace").partition(":")
        if not separator or not ref:
            _record(f"kubekms key info {key_id!r} is not <provider>:<key id>")
            raise InvalidKeyIdError("malformed key info")
        accepted = self.config.accepted
        candidates = tuple(
            backend
            for backend in self.config.backends
            if backend.provider == provider and (accepted is None or f"{backend.name}:{ref}" in accepted)
        )
        if accepted is not None and not candidates:
            _refuse_unaccepted(f"{provider}:{ref}")
        return ProtocolMasterKey(key_id=key_id, key_ref=ref, candidates=candidates)


def _aws_reason(error: BaseException) -> str:
    cause = error.__cause__ if isinstance(error.__cause__, Exception) else error
    if isinstance(cause, botocore.exceptions.BotoCoreError | botocore.exceptions.ClientError):
        mapped = map_client_error("Decrypt", cause)
        return f"{mapped.identifier}: {mapped.message}"
    return str(error)


class AwsMasterKey(KMSMasterKey):  # type: ignore[misc]
    """The SDK's aws-kms master key, with refusals turned into our errors and reasons recorded."""

    def _generate_data_key(self, algorithm: Algorithm, encryption_context: Mapping[str, str]) -> DataKey:
        try:
            return super()._generate_data_key(algorithm, encryption_context)
        except (GenerateKeyError, botocore.exceptions.BotoCoreError) as error:
            raise self._failure(error) from None

    def _encrypt_data_key(
        self, data_key: DataKey, algorithm: Algorithm, encryption_context: Mapping[str, str]
    ) -> EncryptedDataKey:
        try:
            return super()._encrypt_data_key(data_key, algorithm, encryption_context)
        except (EncryptKeyError, botocore.exceptions.BotoCoreError) as error:
            raise self._failure(error) from None

    def _failure(self, error: Exception) -> EnvelopeError:
        cause = error.__cause__ if isinstance(error.__cause__, Exception) else error
        if isinstance(cause, botocore.exceptions.BotoCoreError | botocore.exceptions.ClientError):
            return key_failure(f"key aws-kms {self._key_id}", map_client_error("GenerateDataKey/Encrypt", cause))
        return KeyUnusable(f"key aws-kms {self._key_id}: {error}")

    def _decrypt_data_key(
        self, encrypted_data_key: EncryptedDataKey, algorithm: Algorithm, encryption_context: Mapping[str, str]
    ) -> DataKey:
        try:
            return super()._decrypt_data_key(encrypted_data_key, algorithm, encryption_context)
        except (DecryptKeyError, botocore.exceptions.BotoCoreError) as error:
            _record(f"aws-kms {self._key_id}: {_aws_reason(error)}")
            raise DecryptKeyError("AWS KMS could not unwrap this data key") from None


@dataclass(frozen=True)
class AwsClient:
    name: str
    region: str
    client: Any  # a boto3 KMS client


@attr.s(hash=True)
class AwsKeysConfig(MasterKeyProviderConfig):  # type: ignore[misc]
    """``accepted``: None tries every key ARN a message names (discovery); else only these ARNs."""

    clients: tuple[AwsClient, ...] = attr.ib(hash=False, eq=False, converter=tuple)
    accepted: frozenset[str] | None = attr.ib(default=None, hash=False, eq=False)


class AwsKeys(MasterKeyProvider):  # type: ignore[misc]
    """On decryption, an aws-kms master key for each key ARN met, on the aws backend of its region."""

    provider_id = AWS_PROVIDER_ID
    _config_class = AwsKeysConfig

    def __init__(self, **kwargs: Any) -> None:
        pass

    def _new_master_key(self, key_id: bytes) -> AwsMasterKey:
        arn = key_id.decode(errors="replace")
        if self.config.accepted is not None and arn not in self.config.accepted:
            _refuse_unaccepted(f"aws-kms {arn}")
        parts = arn.split(":")
        region = parts[3] if arn.startswith("arn:") and len(parts) > 5 else ""
        for entry in self.config.clients:
            if entry.region == region:
                return AwsMasterKey(key_id=key_id, client=entry.client)
        _record(f"aws-kms {arn}: no aws backend configured for region {region or '(none in the key info)'}")
        raise InvalidKeyIdError("no aws backend for this region")


def aws_master_key(entry: AwsClient, key_ref: str) -> AwsMasterKey:
    return AwsMasterKey(key_id=key_ref, client=entry.client)


def encryption_keys(master_keys: Sequence[MasterKey]) -> ProtocolKeys:
    """A root provider whose first master key makes the data key and every other one wraps it too."""
    root = ProtocolKeys(backends=())
    for master_key in master_keys:
        root.add_master_key_provider(master_key)
    return root
