"""A keyring: named kubekms backends, the keys to encrypt under, and the SDK objects over them.

Backends are named by the caller (``Keyring({"onprem": cfg1, "dr": cfg2}, keys=...)``); a key is
``KeyRef(backend, key)`` with ``key`` an id or alias (an ARN or ``alias/x`` too on provider
``aws``). The keyring owns one :class:`~kubekms.envelope.loop.LoopThread` on which it opens
every protocol backend, and one boto3 client per ``aws`` backend. ``open()`` does the I/O
(the constructor does none); ``close()`` releases everything; it is a context manager too.

Encryption: the first key makes the data key, every other key wraps the same data key, so the
message decrypts with any one of them. Decryption: every configured backend is a candidate for
the message's keys of its provider (``kubekms`` key info ``<provider>:<key id>``, or an aws-kms
key ARN on the aws backend of the ARN's region); the credentials' permissions are the limit,
as with the SDK's discovery providers. ``strict=True`` accepts only data keys wrapped under the
given keys (resolved to key ids / ARNs at ``open()``), as the SDK's strict providers do: a message
naming any other key, even one the credentials may use, does not decrypt.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import botocore.exceptions
from aws_encryption_sdk.key_providers.base import MasterKey
from aws_encryption_sdk.materials_managers.base import CryptoMaterialsManager
from aws_encryption_sdk.materials_managers.default import DefaultCryptoMaterialsManager

from kubekms.envelope.errors import InvalidRequest
from kubekms.envelope.keys import (
    AwsClient,
    AwsKeys,
    OpenBackend,
    ProtocolKeys,
    ProtocolMasterKey,
    aws_master_key,
    encryption_keys,
    key_failure,
)
from kubekms.envelope.loop import LoopThread
from kubekms.errors import KMSError
from kubekms.providers import BackendConfig, open_backend
from kubekms.providers.aws_mapping import aws_key_ref, map_client_error

CALL_TIMEOUT = 60.0  # seconds one backend call may take, retries included


@dataclass(frozen=True)
class KeyRef:
    backend: str
    key: str

    def __str__(self) -> str:
        return f"{self.backend}:{self.key}"

    @classmethod
    def parse(cls, text: str, backends: Collection[str], default: str) -> KeyRef:
        """``NAME:KEY`` where NAME is one of ``backends``; anything else is a key of ``default``
        (so ``arn:aws:kms:...`` alone is a key, not a backend named ``arn``)."""
        name, separator, key = text.partition(":")
        if separator and name in backends:
            if not key:
                raise InvalidRequest(f"key reference {text!r} names backend {name!r} but no key")
            return cls(name, key)
        if not text:
            raise InvalidRequest("empty key reference")
        return cls(default, text)


class _Materials(CryptoMaterialsManager):  # type: ignore[misc]
    """Encryption materials from the encryption keys, decryption materials from every backend."""

    def __init__(self, encrypting: ProtocolKeys | None, decrypting: ProtocolKeys) -> None:
        self._encrypting = None if encrypting is None else DefaultCryptoMaterialsManager(encrypting)
        self._decrypting = DefaultCryptoMaterialsManager(decrypting)

    def get_encryption_materials(self, request: Any) -> Any:
        if self._encrypting is None:
            raise InvalidRequest("no key to encrypt under: give at least one key")
        return self._encrypting.get_encryption_materials(request)

    def decrypt_materials(self, request: Any) -> Any:
        return self._decrypting.decrypt_materials(request)


class Keyring:
    def __init__(
        self,
        backends: Mapping[str, BackendConfig],
        keys: Sequence[KeyRef] = (),
        *,
        strict: bool = False,
        call_timeout: float = CALL_TIMEOUT,
    ) -> None:
        """``strict``: decrypt only data keys wrapped under ``keys`` (the SDK's strict mode), not under
        whatever key a message names that the credentials may use (discovery)."""
        if strict and not keys:
            raise InvalidRequest("strict decryption needs at least one key")
        if not backends:
            raise InvalidRequest("no backend configured")
        for ref in keys:
            if ref.backend not in backends:
                known = ", ".join(sorted(backends))
                raise InvalidRequest(f"key {ref}: no backend named {ref.backend!r} (configured: {known})")
        self._configs = dict(backends)
        self._keys = tuple(keys)
        self._strict = strict
        self._timeout = call_timeout
        self._loop: LoopThread | None = None
        self._protocol: dict[str, OpenBackend] = {}
        self._aws: dict[str, AwsClient] = {}
        self._materials: _Materials | None = None

    def open(self) -> Keyring:
        self._loop = LoopThread()
        try:
            for name, config in self._configs.items():
                if config.provider == "aws":
                    self._aws[name] = _aws_client(name, config)
                else:
                    backend = self._loop.run(open_backend(config), self._timeout)
                    self._protocol[name] = OpenBackend(name, config.provider, backend, self._loop, self._timeout)
            self._materials = self._build_materials()
        except BaseException:
            self.close()
            raise
        return self

    def _master_key(self, ref: KeyRef) -> MasterKey:
        if ref.backend in self._aws:
            return aws_master_key(self._aws[ref.backend], _aws_key(ref))
        backend = self._protocol[ref.backend]
        return ProtocolMasterKey(key_id=str(ref).encode(), key_ref=ref.key, candidates=(backend,))

    def _accepted(self) -> frozenset[str]:
        """What a message's data keys must be wrapped under: each key's id (an alias may move), by backend."""
        accepted = set()
        for ref in self._keys:
            if ref.backend in self._aws:
                try:
                    answer = self._aws[ref.backend].client.describe_key(KeyId=_aws_key(ref))
                except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as error:
                    raise key_failure(f"key {ref}", map_client_error("DescribeKey", error)) from None
                accepted.add(str(answer["KeyMetadata"]["Arn"]))
                continue
            backend = self._protocol[ref.backend]
            try:
                key = backend.call(backend.backend.describe_key(ref.key))
            except KMSError as error:
                raise key_failure(f"key {ref}", error) from None
            accepted.add(f"{ref.backend}:{key.key_id}")
        return frozenset(accepted)

    def _build_materials(self) -> _Materials:
        encrypting = encryption_keys([self._master_key(ref) for ref in self._keys]) if self._keys else None
        accepted = self._accepted() if self._strict else None
        decrypting = ProtocolKeys(backends=tuple(self._protocol.values()), accepted=accepted)
        if self._aws:
            decrypting.add_master_key_provider(AwsKeys(clients=tuple(self._aws.values()), accepted=accepted))
        return _Materials(encrypting, decrypting)

    @property
    def materials_manager(self) -> CryptoMaterialsManager:
        """The SDK's crypto materials manager over this keyring (wrap it in a caching CMM at will)."""
        if self._materials is None:
            raise RuntimeError("Keyring.open() first")
        return self._materials

    def close(self) -> None:
        loop, self._loop = self._loop, None
        protocol, self._protocol = self._protocol, {}
        aws, self._aws = self._aws, {}
        self._materials = None
        for entry in aws.values():
            entry.client.close()
        if loop is None:
            return
        try:
            for backend in protocol.values():
                # closing is best effort: the process is letting go of the backend anyway
                with contextlib.suppress(KMSError):
                    loop.run(backend.backend.close(), self._timeout)
        finally:
            loop.close()

    def __enter__(self) -> Keyring:
        return self.open()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def _aws_key(ref: KeyRef) -> str:
    return ref.key if ref.key.startswith("alias/") else aws_key_ref(ref.key)


def _aws_client(name: str, config: BackendConfig) -> AwsClient:
    # The provider's own client factory: same region, credentials, endpoint, CA and retry rules.
    from kubekms.providers.aws import kms_client

    client = kms_client(config)
    return AwsClient(name=name, region=str(client.meta.region_name), client=client)
