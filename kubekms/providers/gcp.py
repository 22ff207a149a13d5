"""Provider ``gcp``: the backend protocol on Google Cloud KMS with the official ``google-cloud-kms`` client.

Endpoint: empty for Google (``cloudkms.googleapis.com``), ``https://host:port`` for another
Cloud KMS API over TLS (``ca_file`` to verify it), ``http://host:port`` for plaintext on
loopback only (gRPC local credentials). Credentials: ``credentials_file`` is a service-account
key JSON (self-signed JWTs, no token endpoint), otherwise Application Default Credentials
(workload identity, the metadata server, ``GOOGLE_APPLICATION_CREDENTIALS``).

Mapping onto the protocol (one key ring: ``project_id``, ``region`` as the location, default
``global``, and ``key_ring``, created on first use):
- a key is a crypto key (purpose ENCRYPT_DECRYPT); its key id *and* its only alias is the
  crypto key id (``[a-zA-Z0-9_-]{1,63}``, not key-id shaped); a key created without an alias
  gets ``k-<32 hex>``. Cloud KMS has no aliases: create_alias/delete_alias are refused.
- ``current_version`` is the primary version's number; rotate_key adds a version and makes
  it primary; automatic rotation is ``rotation_period``/``next_rotation_time``.
- key state is the primary version's: DESTROY_SCHEDULED is PENDING_DELETION, DESTROYED is
  DESTROYED. disable_key disables every enabled version, enable_key enables every disabled
  one; schedule_key_deletion destroys every version (they become DESTROY_SCHEDULED), and
  cancel_key_deletion restores them (DISABLED, as on Cloud KMS). The pending window is the
  key's ``destroy_scheduled_duration``, fixed at creation (``PENDING_DAYS``): other windows
  are refused.
- tags are labels, encoded: label key ``kk`` + base32hex(tag key), value base32hex(tag
  value), lowercase without padding, so ``kubekms.io/uid`` and a Kubernetes UID fit Cloud
  KMS's label syntax (tag keys up to 38 bytes, values up to 39). The description is the
  label ``description`` (encoded the same way, up to 39 bytes).
- data keys are generated here (``os.urandom``) and wrapped with Encrypt (Cloud KMS has no
  GenerateDataKey); ``aad`` is the additional authenticated data; every Encrypt/Decrypt
  sends CRC32C checksums and checks the ones returned, as Google asks of clients.
- list_keys, find_keys_by_tag and instance_count list the key ring (O(keys) per call).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import os
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

import google_crc32c
import grpc
from google.api_core import exceptions as google_errors
from google.auth import default as default_credentials
from google.auth import exceptions as auth_errors
from google.cloud import kms_v1
from google.cloud.kms_v1.services.key_management_service.transports import KeyManagementServiceGrpcAsyncIOTransport
from google.oauth2 import service_account

from kubekms.backend import (
    ORIGIN_KMS,
    DataKey,
    KeyMetadata,
    KeyPage,
    KeyState,
    NoGrants,
    NoKeyImport,
    NoKeyPolicies,
    NoKeyTypes,
    Quota,
    RotationStatus,
    not_offered,
)
from kubekms.errors import (
    AccessDenied,
    AlreadyExists,
    InvalidArgument,
    InvalidCiphertext,
    InvalidState,
    KMSError,
    NotFound,
    PendingDeletion,
    Reason,
    Throttled,
    Unauthenticated,
    Unavailable,
)
from kubekms.keystore.rules import check_range, require_usable
from kubekms.providers import BackendConfig
from kubekms.providers.backend_text import backend_text
from kubekms.providers.endpoints import ca_bundle, check_endpoint, shown_endpoint

T = TypeVar("T")
State = kms_v1.CryptoKeyVersion.CryptoKeyVersionState
SCOPES = ("https://www.googleapis.com/auth/cloudkms",)
KEY_ID = re.compile(r"[a-zA-Z0-9_-]{1,63}")
UUID_SHAPED = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
PENDING_DAYS = 30  # destroy_scheduled_duration of the keys this provider creates
DEFAULT_ROTATION_DAYS = 365
ROTATION_DAYS = (1, 3650)
DATA_KEY_BYTES = (1, 1024)
RANDOM_BYTES = (8, 1024)  # Cloud KMS's GenerateRandomBytes range
LIST_LIMIT = (1, 1000)
QUOTA_CMK = 1000  # informational: Cloud KMS has no per-key-ring limit; the kubekms figure
TAG_PREFIX = "kk"
DESCRIPTION_LABEL = "description"
KEY_STATES = {
    State.ENABLED: KeyState.ENABLED,
    State.DISABLED: KeyState.DISABLED,
    State.DESTROY_SCHEDULED: KeyState.PENDING_DELETION,
    State.DESTROYED: KeyState.DESTROYED,
}
ERRORS: tuple[tuple[type[Exception], type[KMSError]], ...] = (
    (google_errors.NotFound, NotFound),
    (google_errors.AlreadyExists, AlreadyExists),
    (google_errors.FailedPrecondition, InvalidState),
    (google_errors.InvalidArgument, InvalidArgument),
    (google_errors.PermissionDenied, AccessDenied),
    (google_errors.Unauthenticated, Unauthenticated),
    (google_errors.TooManyRequests, Throttled),
)


def _encode(text: str) -> str:
    return base64.b32hexencode(text.encode()).decode().rstrip("=").lower()


def _decode(text: str) -> str | None:
    try:
        return base64.b32hexdecode(text.upper() + "=" * (-len(text) % 8)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def tags_to_labels(tags: Mapping[str, str]) -> dict[str, str]:
    labels = {}
    for key, value in tags.items():
        label_key, label_value = TAG_PREFIX + _encode(key), _encode(value)
        if not key or len(label_key) > 63 or len(label_value) > 63:
            raise InvalidArgument(f"tag {key[:40]!r}: on Cloud KMS a tag key is 1-38 bytes and a value 0-39 bytes",
                                  reason=Reason.TAG_KEY_INVALID)  # fmt: skip
        labels[label_key] = label_value
    return labels


def labels_to_tags(labels: Mapping[str, str]) -> dict[str, str]:
    tags = {}
    for key, value in labels.items():
        tag_key = _decode(key[len(TAG_PREFIX) :]) if key.startswith(TAG_PREFIX) else None
        tag_value = _decode(value) if tag_key is not None else None
        if tag_key is not None and tag_value is not None:
            tags[tag_key] = tag_value
        elif key != DESCRIPTION_LABEL:
            tags[key] = value  # a label set by other tools, as it is
    return tags


def _crc(data: bytes) -> int:
    return int(google_crc32c.value(data))


def _map_error(error: google_errors.GoogleAPICallError) -> KMSError:
    message = backend_text(str(error.message or error))  # callers copy it into statuses, logs, terminals
    if isinstance(error, google_errors.InvalidArgument) and message.startswith("Decryption failed"):
        return InvalidCiphertext(message)
    for google_type, ours in ERRORS:
        if isinstance(error, google_type):
            return ours(message)
    return Unavailable(f"Cloud KMS: {message}")


def _calls_cloud_kms(method: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    @functools.wraps(method)
    async def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return await method(*args, **kwargs)
        except google_errors.GoogleAPICallError as error:
            raise _map_error(error) from None
        except google_errors.RetryError as error:
            raise Unavailable(f"Cloud KMS did not answer: {backend_text(str(error.message))}") from None

    return wrapper


def _credentials(config: BackendConfig) -> Any:
    """The key file's service account, else ADC; either unusable is Unauthenticated, never the file's content."""
    path = config.credentials_file
    if path is not None:
        try:
            # google-auth leaves this classmethod unannotated
            return service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                str(path), scopes=SCOPES
            )
        except OSError as error:
            raise Unauthenticated(f"gcp: cannot read {path}: {error.strerror}") from None
        except auth_errors.MalformedError as error:  # names the missing fields, not values
            raise Unauthenticated(f"gcp: {path} is not a usable service-account key JSON: {error}") from None
        except ValueError:  # not JSON, or a private_key that is no PEM key: the library's text might quote it
            raise Unauthenticated(f"gcp: {path} is not a usable service-account key JSON (not JSON, or its "
                                  "private_key is not a PEM key)") from None  # fmt: skip
    try:
        credentials, _ = default_credentials(scopes=SCOPES)
    except auth_errors.DefaultCredentialsError as error:
        raise Unauthenticated(f"gcp: no credentials file, and Application Default Credentials are not usable: "
                              f"{error}", reason=Reason.CREDENTIAL_MISSING) from None  # fmt: skip
    return credentials


def _client(config: BackendConfig) -> kms_v1.KeyManagementServiceAsyncClient:
    endpoint = config.endpoint
    if endpoint:
        check_endpoint(endpoint, "gcp")
    credentials = _credentials(config)
    if not endpoint:
        return kms_v1.KeyManagementServiceAsyncClient(credentials=credentials)
    scheme, _, host = endpoint.partition("://")
    if scheme not in ("https", "http") or not host or "/" in host.rstrip("/"):
        raise InvalidArgument(
            f"gcp endpoint must be https://HOST:PORT or http://HOST:PORT (loopback), got {shown_endpoint(endpoint)!r}"
        )
    if scheme == "http":
        channel_credentials = grpc.local_channel_credentials()  # plaintext, refused beyond loopback by gRPC
    else:
        roots = ca_bundle(config.ca_file) if config.ca_file is not None else None
        channel_credentials = grpc.ssl_channel_credentials(root_certificates=roots)

    def channel(target: str, **kwargs: Any) -> Any:
        kwargs["ssl_credentials"] = channel_credentials
        return KeyManagementServiceGrpcAsyncIOTransport.create_channel(target, **kwargs)

    transport = KeyManagementServiceGrpcAsyncIOTransport(host=host.rstrip("/"), credentials=credentials,
                                                         channel=channel, always_use_jwt_access=True)  # fmt: skip
    return kms_v1.KeyManagementServiceAsyncClient(transport=transport)


class GcpBackend(NoGrants, NoKeyPolicies, NoKeyTypes, NoKeyImport):
    provider_label = "gcp"

    def __init__(self, client: kms_v1.KeyManagementServiceAsyncClient, key_ring: str) -> None:
        self._client = client
        self._key_ring = key_ring
        self._location = key_ring.split("/keyRings/")[0]
        self._ring_checked = False

    # --- names and reading -------------------------------------------------------------

    def _key_name(self, key_ref: str) -> str:
        if not isinstance(key_ref, str) or not KEY_ID.fullmatch(key_ref):
            raise NotFound(f"no key {key_ref[:80]!r}: keys here are Cloud KMS crypto key ids")
        return f"{self._key_ring}/cryptoKeys/{key_ref}"

    async def _ensure_key_ring(self) -> None:
        if self._ring_checked:
            return
        ring_id = self._key_ring.rsplit("/", 1)[1]
        with contextlib.suppress(google_errors.AlreadyExists):
            await self._client.create_key_ring(request={"parent": self._location, "key_ring_id": ring_id})
        self._ring_checked = True

    async def _get(self, key_ref: str) -> kms_v1.CryptoKey:
        return await self._client.get_crypto_key(request={"name": self._key_name(key_ref)})

    async def _versions(self, key: kms_v1.CryptoKey) -> list[kms_v1.CryptoKeyVersion]:
        pager = await self._client.list_crypto_key_versions(request={"parent": key.name, "page_size": 1000})
        return [version async for version in pager]

    async def _all_keys(self) -> list[kms_v1.CryptoKey]:
        """The key ring's ENCRYPT_DECRYPT crypto keys: its signing and MAC keys are no keys of this provider."""
        await self._ensure_key_ring()
        pager = await self._client.list_crypto_keys(request={"parent": self._key_ring, "page_size": 1000})
        return [key async for key in pager if key.purpose == kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT]

    @staticmethod
    def _metadata(key: kms_v1.CryptoKey, versions: int | None = None) -> KeyMetadata:
        key_id = key.name.rsplit("/", 1)[1]
        primary = key.primary
        version = int(primary.name.rsplit("/", 1)[1]) if primary.name else 0
        state = KEY_STATES.get(primary.state, KeyState.PENDING_ACTIVATION) if primary.name else KeyState.DESTROYED
        # proto-plus gives Timestamp and Duration fields as datetime and timedelta (the hints say the
        # protobuf types): hence the casts here and in schedule_key_deletion, _rotation_status
        rotation_days = (
            int(cast(timedelta, key.rotation_period).total_seconds() // 86400) if "rotation_period" in key else 0
        )
        description = _decode(key.labels.get(DESCRIPTION_LABEL, "")) or ""
        return KeyMetadata(
            key_id=key_id,
            alias=key_id,
            description=description,
            key_spec="AES_256",
            key_usage="ENCRYPT_DECRYPT",
            state=state,
            created_at=cast(datetime, key.create_time),
            current_version=version,
            rotation_enabled=rotation_days > 0,
            rotation_interval_days=rotation_days or DEFAULT_ROTATION_DAYS,
            last_rotation_at=cast(datetime, primary.create_time) if version > 1 else None,
            deletion_date=cast(datetime, primary.destroy_time) if state is KeyState.PENDING_DELETION else None,
            aliases=(key_id,),
            tags=labels_to_tags(key.labels),
            origin="kms",
        )

    # --- lifecycle ----------------------------------------------------------------------

    @_calls_cloud_kms
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
    ) -> KeyMetadata:
        if origin != ORIGIN_KMS:
            raise not_offered(self.provider_label, "keys for imported key material", Reason.UNSUPPORTED_OPERATION)
        if policy is not None:
            raise not_offered(self.provider_label, "key policies")
        if alias and (not KEY_ID.fullmatch(alias) or UUID_SHAPED.fullmatch(alias)):
            raise InvalidArgument(f"invalid alias {alias[:80]!r}: a Cloud KMS crypto key id ([a-zA-Z0-9_-]{{1,63}}, "
                                  "not a key id)", reason=Reason.ALIAS_INVALID)  # fmt: skip
        if key_spec != "AES_256" or key_usage != "ENCRYPT_DECRYPT":
            raise InvalidArgument("provider gcp offers AES_256 ENCRYPT_DECRYPT keys only")
        labels = tags_to_labels(tags or {})
        if description:
            labels[DESCRIPTION_LABEL] = self._description_label(description)
        await self._ensure_key_ring()
        crypto_key = {"purpose": kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT, "labels": labels,
                      "destroy_scheduled_duration": timedelta(days=PENDING_DAYS)}  # fmt: skip
        created = await self._client.create_crypto_key(request={
            "parent": self._key_ring, "crypto_key_id": alias or f"k-{uuid.uuid4().hex}", "crypto_key": crypto_key
        })  # fmt: skip
        return self._metadata(created)

    @staticmethod
    def _description_label(description: str) -> str:
        encoded = _encode(description)
        if len(encoded) > 63:
            raise InvalidArgument(
                "on Cloud KMS a description is at most 39 bytes (a label)", reason=Reason.DESCRIPTION_INVALID
            )
        return encoded

    @_calls_cloud_kms
    async def list_keys(self, *, limit: int = 100, marker: str | None = None,
                        state: KeyState | None = None, key_spec: str | None = None) -> KeyPage:  # fmt: skip
        check_range("limit", limit, LIST_LIMIT, reason=Reason.LIST_LIMIT_INVALID)
        if marker and (not marker.isdigit() or len(marker) > 18):
            raise InvalidArgument(f"invalid marker {marker[:40]!r}", reason=Reason.MARKER_INVALID)
        keys = [self._metadata(key) for key in await self._all_keys()]
        keys = [key for key in keys if key.state is state or (state is None and key.state is not KeyState.DESTROYED)]
        keys = [key for key in keys if key_spec is None or key.key_spec == key_spec]
        keys.sort(key=lambda key: key.created_at)
        offset = int(marker or 0)
        page = keys[offset : offset + limit]
        next_marker = str(offset + len(page)) if offset + len(page) < len(keys) else None
        return KeyPage(keys=page, next_marker=next_marker, total=len(keys))

    @_calls_cloud_kms
    async def describe_key(self, key_id: str) -> KeyMetadata:
        return self._metadata(await self._get(key_id))

    @_calls_cloud_kms
    async def find_keys_by_tag(self, tag_key: str, tag_value: str) -> list[KeyMetadata]:
        keys = [self._metadata(key) for key in await self._all_keys()]
        return sorted((key for key in keys if key.tags.get(tag_key) == tag_value), key=lambda key: key.created_at)

    @_calls_cloud_kms
    async def update_description(self, key_id: str, description: str) -> KeyMetadata:
        key = await self._manageable(key_id)
        labels = dict(key.labels)
        labels[DESCRIPTION_LABEL] = self._description_label(description)
        return self._metadata(await self._update_labels(key, labels))

    async def _update_labels(self, key: kms_v1.CryptoKey, labels: dict[str, str]) -> kms_v1.CryptoKey:
        return await self._client.update_crypto_key(
            request={"crypto_key": {"name": key.name, "labels": labels}, "update_mask": {"paths": ["labels"]}}
        )

    async def _manageable(self, key_id: str) -> kms_v1.CryptoKey:
        key = await self._get(key_id)
        state = self._metadata(key).state
        if state is KeyState.PENDING_DELETION:
            raise PendingDeletion(f"key {key_id} is pending deletion; cancel the deletion first")
        if state is KeyState.DESTROYED:
            raise NotFound(f"key {key_id} was deleted; its material is destroyed")
        return key

    async def _set_states(self, key: kms_v1.CryptoKey, before: int, after: int) -> None:  # State members
        for version in await self._versions(key):
            if version.state == before:
                await self._client.update_crypto_key_version(request={
                    "crypto_key_version": {"name": version.name, "state": after}, "update_mask": {"paths": ["state"]}
                })  # fmt: skip

    @_calls_cloud_kms
    async def enable_key(self, key_id: str) -> KeyMetadata:
        key = await self._manageable(key_id)
        if self._metadata(key).state is not KeyState.DISABLED:
            raise InvalidState(f"key {key_id} is not disabled", reason=Reason.KEY_NOT_DISABLED)
        await self._set_states(key, State.DISABLED, State.ENABLED)
        return await self.describe_key(key_id)

    @_calls_cloud_kms
    async def disable_key(self, key_id: str) -> KeyMetadata:
        key = await self._manageable(key_id)
        if self._metadata(key).state is not KeyState.ENABLED:
            raise InvalidState(f"key {key_id} is not enabled", reason=Reason.KEY_NOT_ENABLED)
        await self._set_states(key, State.ENABLED, State.DISABLED)
        return await self.describe_key(key_id)

    @_calls_cloud_kms
    async def schedule_key_deletion(self, key_id: str, pending_days: int) -> KeyMetadata:
        check_range("pending_days", pending_days, (7, 1096), reason=Reason.PENDING_DAYS_INVALID)
        key = await self._get(key_id)
        window = int(cast(timedelta, key.destroy_scheduled_duration).total_seconds() // 86400)
        if pending_days != window:
            raise InvalidArgument(f"on Cloud KMS the pending window is the key's destroy_scheduled_duration, "
                                  f"{window} days, fixed at creation", reason=Reason.PENDING_DAYS_INVALID)  # fmt: skip
        state = self._metadata(key).state
        if state is KeyState.PENDING_DELETION:
            raise InvalidState(f"key {key_id} is already pending deletion", reason=Reason.ALREADY_PENDING_DELETION)
        if state is KeyState.DESTROYED:
            raise NotFound(f"key {key_id} was deleted; its material is destroyed")
        for version in await self._versions(key):
            if version.state in (State.ENABLED, State.DISABLED):
                await self._client.destroy_crypto_key_version(request={"name": version.name})
        return await self.describe_key(key_id)

    @_calls_cloud_kms
    async def cancel_key_deletion(self, key_id: str) -> KeyMetadata:
        key = await self._get(key_id)
        if self._metadata(key).state is not KeyState.PENDING_DELETION:
            raise InvalidState(f"key {key_id} is not pending deletion", reason=Reason.NOT_PENDING_DELETION)
        for version in await self._versions(key):
            if version.state == State.DESTROY_SCHEDULED:
                await self._client.restore_crypto_key_version(request={"name": version.name})
        return await self.describe_key(key_id)

    # --- rotation -----------------------------------------------------------------------

    def _rotation_status(self, key: kms_v1.CryptoKey) -> RotationStatus:
        meta = self._metadata(key)
        return RotationStatus(
            enabled=meta.rotation_enabled,
            interval_days=meta.rotation_interval_days,
            last_rotation_at=meta.last_rotation_at,
            number_of_rotations=max(meta.current_version - 1, 0),
            next_rotation_at=cast(datetime, key.next_rotation_time) if "next_rotation_time" in key else None,
        )

    @_calls_cloud_kms
    async def set_rotation(self, key_id: str, *, enabled: bool, interval_days: int | None = None) -> RotationStatus:
        if interval_days is not None:
            check_range("rotation interval (days)", interval_days, ROTATION_DAYS)
        key = await self._manageable(key_id)
        fields: dict[str, Any] = {"name": key.name}
        if enabled:
            days = interval_days or self._metadata(key).rotation_interval_days
            fields["rotation_period"] = timedelta(days=days)
            fields["next_rotation_time"] = datetime.now(UTC) + timedelta(days=days)
        updated = await self._client.update_crypto_key(request={
            "crypto_key": fields, "update_mask": {"paths": ["rotation_period", "next_rotation_time"]}
        })  # fmt: skip
        return self._rotation_status(updated)

    @_calls_cloud_kms
    async def rotate_key(self, key_id: str) -> KeyMetadata:
        key = await self._get(key_id)
        require_usable(key_id, self._metadata(key).state)
        version = await self._client.create_crypto_key_version(request={"parent": key.name, "crypto_key_version": {}})
        number = version.name.rsplit("/", 1)[1]
        updated = await self._client.update_crypto_key_primary_version(
            request={"name": key.name, "crypto_key_version_id": number}
        )
        return self._metadata(updated)

    @_calls_cloud_kms
    async def get_rotation_status(self, key_id: str) -> RotationStatus:
        return self._rotation_status(await self._get(key_id))

    # --- randomness and data keys -------------------------------------------------------

    @_calls_cloud_kms
    async def generate_random(self, length: int) -> bytes:
        check_range("random length (bytes)", length, RANDOM_BYTES, reason=Reason.RANDOM_LENGTH_INVALID)
        answer = await self._client.generate_random_bytes(
            request={"location": self._location, "length_bytes": length,
                     "protection_level": kms_v1.ProtectionLevel.HSM}
        )  # fmt: skip
        if answer.data_crc32c != _crc(answer.data):
            raise Unavailable("Cloud KMS answer corrupted in transit (data_crc32c)")
        return bytes(answer.data)

    async def _crypto_refused(self, key_id: str, error: google_errors.FailedPrecondition) -> KMSError:
        """Which state refused a call: the key's, read once more (only on this error path)."""
        try:
            state = self._metadata(await self._get(key_id)).state
        except google_errors.GoogleAPICallError:
            return _map_error(error)
        try:
            require_usable(key_id, state)
        except KMSError as refused:
            return refused
        return _map_error(error)

    @_calls_cloud_kms
    async def encrypt_data_key(self, key_id: str, plaintext: bytes, *, aad: bytes = b"") -> DataKey:
        name = self._key_name(key_id)
        try:
            answer = await self._client.encrypt(request={
                "name": name, "plaintext": plaintext, "additional_authenticated_data": aad,
                "plaintext_crc32c": _crc(plaintext), "additional_authenticated_data_crc32c": _crc(aad),
            })  # fmt: skip
        except google_errors.FailedPrecondition as error:
            raise await self._crypto_refused(key_id, error) from None
        if not answer.verified_plaintext_crc32c or not answer.verified_additional_authenticated_data_crc32c:
            raise Unavailable("Cloud KMS did not verify the request's CRC32C")
        if answer.ciphertext_crc32c != _crc(answer.ciphertext):
            raise Unavailable("Cloud KMS answer corrupted in transit (ciphertext_crc32c)")
        version = int(answer.name.rsplit("/", 1)[1])
        return DataKey(key_id=key_id, key_version=version, ciphertext=bytes(answer.ciphertext))

    async def create_data_key(self, key_id: str, *, length: int = 32, aad: bytes = b"") -> DataKey:
        check_range("data key length (bytes)", length, DATA_KEY_BYTES, reason=Reason.DATA_KEY_LENGTH_INVALID)
        plaintext = os.urandom(length)
        wrapped = await self.encrypt_data_key(key_id, plaintext, aad=aad)
        return DataKey(wrapped.key_id, wrapped.key_version, wrapped.ciphertext, plaintext=plaintext)

    async def create_data_key_without_plaintext(self, key_id: str, *, length: int = 32, aad: bytes = b"") -> DataKey:
        wrapped = await self.create_data_key(key_id, length=length, aad=aad)
        return DataKey(wrapped.key_id, wrapped.key_version, wrapped.ciphertext)

    @_calls_cloud_kms
    async def decrypt_data_key(self, key_id: str, ciphertext: bytes, *, aad: bytes = b"") -> bytes:
        name = self._key_name(key_id)
        try:
            answer = await self._client.decrypt(request={
                "name": name, "ciphertext": ciphertext, "additional_authenticated_data": aad,
                "ciphertext_crc32c": _crc(ciphertext), "additional_authenticated_data_crc32c": _crc(aad),
            })  # fmt: skip
        except google_errors.FailedPrecondition as error:
            raise await self._crypto_refused(key_id, error) from None
        if answer.plaintext_crc32c != _crc(answer.plaintext):
            raise Unavailable("Cloud KMS answer corrupted in transit (plaintext_crc32c)")
        return bytes(answer.plaintext)

    # --- aliases and tags ---------------------------------------------------------------

    @_calls_cloud_kms
    async def create_alias(self, key_id: str, alias: str) -> None:
        await self._manageable(key_id)
        raise InvalidArgument(
            "Cloud KMS has no aliases: a key's only alias is its crypto key id", reason=Reason.ALIAS_INVALID
        )

    async def delete_alias(self, key_id: str, alias: str) -> None:
        raise InvalidArgument(
            "Cloud KMS has no aliases: a key's only alias is its crypto key id", reason=Reason.ALIAS_INVALID
        )

    async def list_aliases(self, key_id: str) -> list[str]:
        return list((await self.describe_key(key_id)).aliases)

    async def update_key_alias(self, key_id: str, alias: str) -> KeyMetadata:
        raise not_offered(self.provider_label, "renaming a key (a key's only alias is its crypto key id, fixed)",
                          Reason.UNSUPPORTED_OPERATION)  # fmt: skip

    @_calls_cloud_kms
    async def tag_key(self, key_id: str, tags: Mapping[str, str]) -> None:
        key = await self._manageable(key_id)
        await self._update_labels(key, {**key.labels, **tags_to_labels(tags)})

    @_calls_cloud_kms
    async def untag_key(self, key_id: str, tag_keys: Sequence[str]) -> None:
        key = await self._manageable(key_id)
        removed = {TAG_PREFIX + _encode(tag_key) for tag_key in tag_keys} | set(tag_keys)
        await self._update_labels(key, {k: v for k, v in key.labels.items() if k not in removed})

    async def list_tags(self, key_id: str) -> dict[str, str]:
        return dict((await self.describe_key(key_id)).tags)

    # --- account ------------------------------------------------------------------------

    @_calls_cloud_kms
    async def instance_count(self) -> int:
        return (await self.list_keys(limit=1)).total

    async def quotas(self) -> list[Quota]:
        return [Quota(resource="CMK", used=await self.instance_count(), limit=QUOTA_CMK)]

    @_calls_cloud_kms
    async def check_health(self) -> None:
        await self._ensure_key_ring()
        await self._client.get_key_ring(request={"name": self._key_ring})

    async def close(self) -> None:
        await self._client.transport.close()  # type: ignore[no-untyped-call]  # unannotated in google-cloud-kms


async def open_backend(config: BackendConfig) -> GcpBackend:
    """Provider ``gcp``: ``project_id``, ``region`` (the location, default ``global``) and ``key_ring``."""
    location = config.region or "global"
    key_ring = config.key_ring or "kubekms"
    if not KEY_ID.fullmatch(key_ring) or not re.fullmatch(r"[a-z0-9-]{1,63}", location):
        raise InvalidArgument(f"gcp: invalid key ring {key_ring!r} or location {location!r}")
    ring_name = f"projects/{config.project_id}/locations/{location}/keyRings/{key_ring}"
    return GcpBackend(_client(config), ring_name)
