"""Provider ``local``: the keystore engine in-process, behind the async backend protocol.

Writes (which fsync) run in a worker thread so the event loop never waits on the disk;
reads and cryptographic operations are served from the keystore's in-memory cache on
the loop itself, which is cheaper than a thread hop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import datetime

from kubekms.backend import (
    ORIGIN_KMS,
    DataKey,
    DataKeyPair,
    Grant,
    GrantTerms,
    ImportParameters,
    KeyMetadata,
    KeyOutput,
    KeyPage,
    KeyState,
    Quota,
    RotationStatus,
)
from kubekms.errors import InvalidArgument
from kubekms.keystore import DueWork, Keystore
from kubekms.keystore.rules import PENDING_DAYS, SEAL_LIMITS, SealLimits
from kubekms.keystore.store import KeyVersion
from kubekms.providers import BackendConfig


class LocalBackend:
    def __init__(self, keystore: Keystore) -> None:
        self._store = keystore

    # lifecycle
    async def create_key(
        self,
        alias: str,
        *,
        description: str = "",
        key_spec: str = "AES_256",
        key_usage: str = "ENCRYPT_DECRYPT",
        tags: Mapping[str, str] | None = None,
        policy: str | None = None,
        origin: str = ORIGIN_KMS,
        region: str = "",
    ) -> KeyMetadata:
        return await asyncio.to_thread(
            self._store.create_key,
            alias,
            description=description,
            key_spec=key_spec,
            key_usage=key_usage,
            tags=tags,
            policy=policy,
            origin=origin,
            region=region,
        )

    async def list_keys(
        self,
        *,
        limit: int = 100,
        marker: str | None = None,
        state: KeyState | None = None,
        key_spec: str | None = None,
        region: str | None = None,
    ) -> KeyPage:
        return self._store.list_keys(limit=limit, marker=marker, state=state, key_spec=key_spec, region=region)

    async def describe_key(self, key_id: str) -> KeyMetadata:
        return self._store.describe_key(key_id)

    async def key_names(self, key_id: str) -> tuple[str, ...]:
        return self._store.key_names(key_id)

    async def key_region(self, key_id: str) -> str:
        return self._store.key_region(key_id)

    async def find_keys_by_tag(self, tag_key: str, tag_value: str) -> list[KeyMetadata]:
        return self._store.find_keys_by_tag(tag_key, tag_value)

    async def update_description(self, key_id: str, description: str) -> KeyMetadata:
        return await asyncio.to_thread(self._store.update_description, key_id, description)

    async def enable_key(self, key_id: str) -> KeyMetadata:
        return await asyncio.to_thread(self._store.enable_key, key_id)

    async def disable_key(self, key_id: str) -> KeyMetadata:
        return await asyncio.to_thread(self._store.disable_key, key_id)

    async def schedule_key_deletion(
        self, key_id: str, pending_days: int, *, window: tuple[int, int] = PENDING_DAYS
    ) -> KeyMetadata:
        return await asyncio.to_thread(self._store.schedule_key_deletion, key_id, pending_days, window=window)

    async def cancel_key_deletion(self, key_id: str) -> KeyMetadata:
        return await asyncio.to_thread(self._store.cancel_key_deletion, key_id)

    # rotation
    async def set_rotation(self, key_id: str, *, enabled: bool, interval_days: int | None = None) -> RotationStatus:
        return await asyncio.to_thread(self._store.set_rotation, key_id, enabled=enabled, interval_days=interval_days)

    async def rotate_key(self, key_id: str) -> KeyMetadata:
        return await asyncio.to_thread(self._store.rotate_key, key_id)

    async def get_rotation_status(self, key_id: str) -> RotationStatus:
        return self._store.get_rotation_status(key_id)

    # one version of a key (the web console; no other provider has them, so not in the Backend protocol)
    async def disabled_versions(self, key_id: str) -> frozenset[int]:
        return self._store.disabled_versions(key_id)

    async def key_versions(self, key_id: str) -> list[KeyVersion]:
        return self._store.key_versions(key_id)

    async def set_version_enabled(self, key_id: str, version: int, *, enabled: bool) -> None:
        await asyncio.to_thread(self._store.set_version_enabled, key_id, version, enabled=enabled)

    async def run_due_work(self) -> DueWork:
        """Automatic rotation and destruction after the pending window (the server's scheduler calls it)."""
        return await asyncio.to_thread(self._store.run_due_work)

    # randomness and data keys
    async def generate_random(self, length: int) -> bytes:
        return self._store.generate_random(length)

    async def create_data_key(self, key_id: str, *, length: int = 32, aad: bytes = b"") -> DataKey:
        return self._store.create_data_key(key_id, length=length, aad=aad)

    async def create_data_key_without_plaintext(self, key_id: str, *, length: int = 32, aad: bytes = b"") -> DataKey:
        return self._store.create_data_key(key_id, length=length, aad=aad, with_plaintext=False)

    # ``limits``: the wire's own sizes (the Cloud KMS wire's are larger than the Backend protocol's, AWS's)
    async def encrypt_data_key(
        self, key_id: str, plaintext: bytes, *, aad: bytes = b"", limits: SealLimits = SEAL_LIMITS
    ) -> DataKey:
        return self._store.encrypt_data_key(key_id, plaintext, aad=aad, limits=limits)

    async def decrypt_data_key(
        self, key_id: str, ciphertext: bytes, *, aad: bytes = b"", limits: SealLimits = SEAL_LIMITS
    ) -> bytes:
        return self._store.decrypt_data_key(key_id, ciphertext, aad=aad, limits=limits)

    async def create_data_key_pair(
        self, key_id: str, pair_spec: str, *, aad: bytes = b"", with_plaintext: bool = True
    ) -> DataKeyPair:
        pair = await asyncio.to_thread(self._store.create_data_key_pair, key_id, pair_spec, aad=aad)  # RSA: slow
        if with_plaintext:
            return pair
        return DataKeyPair(pair.key_id, pair.pair_spec, pair.public_key, pair.private_ciphertext)

    # imported key material
    async def get_parameters_for_import(
        self, key_id: str, *, wrapping_algorithm: str, wrapping_key_spec: str
    ) -> ImportParameters:
        return await asyncio.to_thread(
            self._store.get_parameters_for_import,
            key_id,
            wrapping_algorithm=wrapping_algorithm,
            wrapping_key_spec=wrapping_key_spec,
        )

    async def import_key_material(
        self,
        key_id: str,
        import_token: bytes,
        encrypted_material: bytes,
        *,
        valid_to: datetime | None = None,
        new_material: bool = False,
    ) -> None:
        expires = None if valid_to is None else valid_to.timestamp()
        await asyncio.to_thread(self._store.import_key_material, key_id, import_token, encrypted_material,
                                valid_to=expires, new_material=new_material)  # fmt: skip

    async def delete_imported_key_material(self, key_id: str) -> None:
        await asyncio.to_thread(self._store.delete_imported_key_material, key_id)

    # asymmetric and HMAC keys (RSA private operations take milliseconds: a worker thread)
    async def get_public_key(self, key_id: str) -> bytes:
        return self._store.get_public_key(key_id)

    async def sign(self, key_id: str, message: bytes, *, algorithm: str, digest: bool = False) -> KeyOutput:
        return await asyncio.to_thread(self._store.sign, key_id, message, algorithm=algorithm, digest=digest)

    async def verify(
        self, key_id: str, message: bytes, signature: bytes, *, algorithm: str, digest: bool = False
    ) -> bool:
        return self._store.verify(key_id, message, signature, algorithm=algorithm, digest=digest)

    async def encrypt_asymmetric(self, key_id: str, plaintext: bytes, *, algorithm: str) -> KeyOutput:
        return self._store.encrypt_asymmetric(key_id, plaintext, algorithm=algorithm)

    async def decrypt_asymmetric(self, key_id: str, ciphertext: bytes, *, algorithm: str) -> KeyOutput:
        return await asyncio.to_thread(self._store.decrypt_asymmetric, key_id, ciphertext, algorithm=algorithm)

    async def generate_mac(self, key_id: str, message: bytes, *, algorithm: str) -> KeyOutput:
        return self._store.generate_mac(key_id, message, algorithm=algorithm)

    async def verify_mac(self, key_id: str, message: bytes, mac: bytes, *, algorithm: str) -> bool:
        return self._store.verify_mac(key_id, message, mac, algorithm=algorithm)

    # aliases and tags
    async def create_alias(self, key_id: str, alias: str) -> None:
        await asyncio.to_thread(self._store.create_alias, key_id, alias)

    async def delete_alias(self, key_id: str, alias: str) -> None:
        await asyncio.to_thread(self._store.delete_alias, key_id, alias)

    async def list_aliases(self, key_id: str) -> list[str]:
        return self._store.list_aliases(key_id)

    async def update_alias(self, alias: str, key_id: str) -> None:
        await asyncio.to_thread(self._store.update_alias, alias, key_id)

    async def update_key_alias(self, key_id: str, alias: str) -> KeyMetadata:
        return await asyncio.to_thread(self._store.update_key_alias, key_id, alias)

    async def get_key_policy(self, key_id: str) -> str | None:
        return self._store.get_key_policy(key_id)

    async def put_key_policy(self, key_id: str, document: str) -> None:
        await asyncio.to_thread(self._store.put_key_policy, key_id, document)

    async def create_grant(self, key_id: str, terms: GrantTerms) -> Grant:
        return await asyncio.to_thread(self._store.create_grant, key_id, terms)

    async def list_grants(self, key_id: str | None = None, *, retiring: str = "") -> list[Grant]:
        return self._store.list_grants(key_id, retiring=retiring)

    async def find_grant(self, *, token: str = "", key_id: str = "", grant_id: str = "") -> Grant:
        return self._store.find_grant(token=token, key_ref=key_id, grant_id=grant_id)

    async def delete_grant(self, key_id: str, grant_id: str) -> None:
        await asyncio.to_thread(self._store.delete_grant, key_id, grant_id)

    async def tag_key(self, key_id: str, tags: Mapping[str, str]) -> None:
        await asyncio.to_thread(self._store.tag_key, key_id, tags)

    async def untag_key(self, key_id: str, tag_keys: Sequence[str]) -> None:
        await asyncio.to_thread(self._store.untag_key, key_id, tag_keys)

    async def list_tags(self, key_id: str) -> dict[str, str]:
        return self._store.list_tags(key_id)

    # account
    async def instance_count(self) -> int:
        return self._store.instance_count()

    async def quotas(self) -> list[Quota]:
        return self._store.quotas()

    async def check_health(self) -> None:
        self._store.instance_count()

    async def close(self) -> None:
        self._store.close()


async def open_backend(config: BackendConfig) -> LocalBackend:
    if config.state_dir is None:
        raise InvalidArgument("provider 'local' needs state_dir (the keystore directory)")
    keystore = await asyncio.to_thread(Keystore, config.state_dir, init=config.init, cmk_limit=config.cmk_limit)
    return LocalBackend(keystore)
