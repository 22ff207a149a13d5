"""The Cloud KMS methods (``google.cloud.kms.v1.KeyManagementService``) on the keystore, with Cloud KMS's rules.

Model: a key ring and a crypto key exist in :mod:`kubekms.server.gcp_store`; every crypto key
version is one keystore key (alias ``gcp/<location>/<ring>/<key>/<version>``), so a version's
state *is* its keystore key's state: ENABLED, DISABLED, DESTROY_SCHEDULED (pending deletion,
``destroy_time`` = the deletion date) and DESTROYED (the keystore destroyed the material when the
window ended). Encrypt uses the crypto key's primary version; Decrypt finds the version from the
ciphertext, which names its keystore key.

Cloud KMS rules kept here: purposes ENCRYPT_DECRYPT, ASYMMETRIC_SIGN, ASYMMETRIC_DECRYPT and MAC
(the algorithms of :mod:`kubekms.server.gcp_algorithms`, protection level SOFTWARE), each method
only on keys of its purpose; only ENCRYPT_DECRYPT keys have a primary version and a rotation
schedule; a new version is not primary until UpdateCryptoKeyPrimaryVersion (except the first, and
automatic rotation); the primary must be ENABLED; destroy only from
ENABLED/DISABLED, restore only from DESTROY_SCHEDULED and back to DISABLED; CRC32C fields
verified when sent and returned always. Where this server is narrower than Cloud KMS:
destroy_scheduled_duration is whole days from 1 to 120 (Google: 24 hours to 120 days; default 30); list filters
and orderings are those of :mod:`kubekms.server.gcp_filters` (no filtering or sorting on repeated fields); a list
page ends early (AIP-158) when its next resource would take it past MAX_PAGE_BYTES, within the gRPC message limit.

Sizes are Cloud KMS's for SOFTWARE keys, with its message (INVALID_ARGUMENT): plaintext and additional
authenticated data up to 64 KiB each, a Decrypt's ciphertext up to 64 KiB and our format's overhead. The keystore
seals them with these limits (:data:`SEAL_LIMITS`); the other wires keep theirs (AWS Encrypt's 4096 bytes).
An AAD starting with the v1.0 wire's encrypt-data marker is refused: sealed so, a ciphertext would cross between
the Cloud KMS wire's Encrypt/Decrypt (encrypt-datakey, decrypt-datakey) and the v1.0 wire's encrypt-data and
decrypt-data, which the marker keeps apart.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import google_crc32c
from cryptography.hazmat.primitives import serialization
from google.cloud import kms_v1

from kubekms import ciphertext as ciphertext_format
from kubekms.backend import Backend, KeyMetadata, KeyState
from kubekms.errors import (
    AccessDenied,
    AlreadyExists,
    InvalidArgument,
    InvalidCiphertext,
    InvalidState,
    KMSError,
    NotFound,
)
from kubekms.keystore.rules import SealLimits
from kubekms.providers.gcp import labels_to_tags
from kubekms.providers.local import LocalBackend
from kubekms.server import gcp_algorithms as algorithms
from kubekms.server import gcp_names as names
from kubekms.server.gcp_filters import ListQuery, list_query
from kubekms.server.gcp_store import CryptoKeyRecord, GcpStore, KeyRingRecord, VersionRecord
from kubekms.server.v1_data_keys import DATA_AAD_MARKER

State = kms_v1.CryptoKeyVersion.CryptoKeyVersionState
Purpose = kms_v1.CryptoKey.CryptoKeyPurpose
Algorithm = kms_v1.CryptoKeyVersion.CryptoKeyVersionAlgorithm
PublicKeyFormat = kms_v1.PublicKey.PublicKeyFormat
R = TypeVar("R")
M = TypeVar("M")

SOFTWARE = kms_v1.ProtectionLevel.SOFTWARE
DAY = 86400
DESTROY_DAYS = (1, 120)  # Google's 24 hours to 120 days; the keystore's own minimum (AWS's) is 7
DEFAULT_DESTROY_DAYS = 30
MIN_ROTATION_SECONDS = DAY
MAX_ROTATION_SECONDS = 100 * 365 * DAY
PAGE_SIZE = (1, 1000)
DEFAULT_PAGE_SIZE = 1000
# a list page's resources, serialized: the gRPC listener sends at most 256 KiB a message (gcp_grpc.MAX_MESSAGE_BYTES),
# and 1000 crypto keys with labels or versions with long names are more; AIP-158 lets a page hold fewer than page_size
MAX_PAGE_BYTES = 224 * 1024
ALL = -1  # SQLite's LIMIT -1: every row (a list filters what the caller may see before it pages)
RANDOM_BYTES = (8, 1024)
TIMESTAMP_SECONDS = (-62135596800, 253402300799)  # 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z (timestamp.proto)
DURATION_SECONDS = 315576000000  # about 10,000 years (duration.proto)
NANOS = 1_000_000_000
MAX_LABELS = 64
LABEL_KEY = re.compile(r"[a-z][a-z0-9_-]{0,62}")
LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")
DECRYPTION_FAILED = "Decryption failed: verify that 'name' refers to the correct CryptoKey."
MAX_DATA_BYTES = 65536  # Cloud KMS: plaintext and AAD of a SOFTWARE key, each
# a Decrypt's ciphertext: 64 KiB sealed in our format (magic, version, key id of up to 255 bytes, nonce, tag)
MAX_CIPHERTEXT_BYTES = MAX_DATA_BYTES + 2 + 1 + 1 + ciphertext_format.MAX_KEY_ID_LENGTH + 4 + 12 + 16
SEAL_LIMITS = SealLimits(plaintext=MAX_DATA_BYTES, aad=MAX_DATA_BYTES)
_enum_name = algorithms.enum_name

STATE_OF = {
    KeyState.ENABLED: State.ENABLED,
    KeyState.DISABLED: State.DISABLED,
    KeyState.PENDING_DELETION: State.DESTROY_SCHEDULED,
    KeyState.DESTROYED: State.DESTROYED,
}


async def no_key_policy(keystore_key_id: str) -> None:
    """The maintenance pass acts for no principal: no key policy applies."""


async def no_tag_rule(tag_keys: Iterable[str]) -> None:
    """The maintenance pass changes no labels."""


@dataclass(frozen=True)
class GcpCall:
    """One authorised request's tenant: the project's keystore, its Cloud KMS records and their write lock.

    ``authorize`` applies the key policy of the keystore key holding the version a call acts on (the
    pipeline authorised the crypto key by resource name; a version's policy may still deny);
    ``may_describe`` the same policy for ``kms:DescribeKey``, before an answer describes a version;
    ``authorize_tag_change`` the rule on ownership tags (PrincipalGrant.authorize_tag_change) for the tag keys
    a label update sets, changes or removes; ``locations`` the location ids served (``gcp.locations``).
    """

    backend: Backend
    store: GcpStore
    lock: asyncio.Lock
    now: datetime
    locations: tuple[str, ...] = names.DEFAULT_LOCATIONS
    authorize: Callable[[str], Awaitable[None]] = no_key_policy
    may_describe: Callable[[str], Awaitable[None]] = no_key_policy
    authorize_tag_change: Callable[[Iterable[str]], Awaitable[None]] = no_tag_rule

    @property
    def epoch(self) -> float:
        return self.now.timestamp()


def crc32c(data: bytes) -> int:
    return int(google_crc32c.value(data))


def _check_crc(request: object, data_field: str, crc_field: str, data: bytes) -> bool:
    """True if the client sent ``crc_field`` (and it matched); a mismatch is INVALID_ARGUMENT."""
    if crc_field not in request:  # type: ignore[operator]  # proto-plus messages support ``in``
        return False
    if getattr(request, crc_field) != crc32c(data):
        raise InvalidArgument(f"The checksum in field {crc_field} did not match the data in field {data_field}.")
    return True


def _time(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def _raw(message: kms_v1.CryptoKey, field: str) -> Any:
    """A field's protobuf value itself: proto-plus converts Timestamps and Durations to datetime and timedelta,
    which raise OverflowError on values a hostile client can send (any int64 of seconds)."""
    return getattr(kms_v1.CryptoKey.pb(message), field)


def _timestamp(message: kms_v1.CryptoKey, field: str) -> float:
    """A Timestamp field as epoch seconds, within protobuf's range (years 1 to 9999), else InvalidArgument."""
    value = _raw(message, field)
    if not TIMESTAMP_SECONDS[0] <= value.seconds <= TIMESTAMP_SECONDS[1] or not 0 <= value.nanos < NANOS:
        raise InvalidArgument(f"{field} is not a valid Timestamp (years 1 to 9999)")
    return float(value.seconds) + float(value.nanos) / NANOS


def _duration(message: kms_v1.CryptoKey, field: str) -> float:
    """A Duration field in seconds, within protobuf's range (10,000 years), else InvalidArgument."""
    value = _raw(message, field)
    if abs(value.seconds) > DURATION_SECONDS or abs(value.nanos) >= NANOS or value.seconds * value.nanos < 0:
        raise InvalidArgument(f"{field} is not a valid Duration (at most 10,000 years)")
    return float(value.seconds) + float(value.nanos) / NANOS


def page_window(page_size: int, page_token: str) -> tuple[int, int]:
    """(offset, limit) from page_size and a page token this server handed out (decimal offset)."""
    if page_size < 0 or page_size > PAGE_SIZE[1]:
        raise InvalidArgument(f"page_size must be from 0 to {PAGE_SIZE[1]}")
    if page_token and (not page_token.isascii() or not page_token.isdigit() or len(page_token) > 18):
        raise InvalidArgument("page_token is not a token this server returned")
    return int(page_token or 0), page_size or DEFAULT_PAGE_SIZE


def next_token(offset: int, count: int, total: int) -> str:
    return str(offset + count) if offset + count < total else ""


# ------------------------------------------------------------------ messages


def key_ring_message(project: str, record: KeyRingRecord) -> kms_v1.KeyRing:
    name = names.KeyRingName(project, record.location, record.ring)
    return kms_v1.KeyRing(name=str(name), create_time=_time(record.created_at))


async def version_message(
    call: GcpCall, name: names.CryptoKeyVersionName, record: VersionRecord, algorithm: str
) -> kms_v1.CryptoKeyVersion:
    await call.may_describe(record.keystore_key_id)
    meta = await call.backend.describe_key(record.keystore_key_id)
    return version_message_of(name, record, meta, algorithm)


def version_message_of(
    name: names.CryptoKeyVersionName, record: VersionRecord, meta: KeyMetadata, algorithm: str
) -> kms_v1.CryptoKeyVersion:
    state = STATE_OF.get(meta.state, State.CRYPTO_KEY_VERSION_STATE_UNSPECIFIED)
    message = kms_v1.CryptoKeyVersion(
        name=str(name),
        state=state,
        protection_level=SOFTWARE,
        algorithm=algorithms.algorithm_value(algorithm),
        create_time=_time(record.created_at),
        generate_time=_time(record.created_at),
    )
    # proto-plus takes datetime and timedelta for Timestamp and Duration fields (and gives them back
    # on reads), while google-cloud-kms's hints name the protobuf types: hence the ignores below.
    if state == State.DESTROY_SCHEDULED:
        message.destroy_time = meta.deletion_date  # type: ignore[assignment]
    elif state == State.DESTROYED:
        message.destroy_time = meta.deletion_date  # type: ignore[assignment]
        message.destroy_event_time = meta.deletion_date  # type: ignore[assignment]
    return message


async def crypto_key_message(call: GcpCall, project: str, record: CryptoKeyRecord) -> kms_v1.CryptoKey:
    name = names.CryptoKeyName(project, record.location, record.ring, record.key)
    message = kms_v1.CryptoKey(
        name=str(name),
        purpose=algorithms.kind_of(record.algorithm).purpose,
        create_time=_time(record.created_at),
        version_template=kms_v1.CryptoKeyVersionTemplate(
            protection_level=SOFTWARE, algorithm=algorithms.algorithm_value(record.algorithm)
        ),
        labels=dict(record.labels),
        destroy_scheduled_duration=timedelta(days=record.destroy_days),
    )
    if record.rotation_period is not None:
        message.rotation_period = timedelta(seconds=record.rotation_period)  # type: ignore[assignment]  # proto-plus
    if record.next_rotation is not None:
        message.next_rotation_time = _time(record.next_rotation)  # type: ignore[assignment]  # proto-plus
    if record.primary_version is not None:
        version = call.store.version(record.location, record.ring, record.key, record.primary_version)
        message.primary = await version_message(call, name.version(record.primary_version), version, record.algorithm)
    return message


async def _visible_page(
    records: Sequence[R],
    may_see: Callable[[R], Awaitable[None]],
    message_of: Callable[[R], Awaitable[M]],
    query: ListQuery,
    offset: int,
    limit: int,
) -> tuple[list[M], str, int]:
    """(messages, next_page_token, total_size) of a list page over the records the caller may see.

    AIP-211: a list omits what the caller may not read (so one key policy cannot break a listing for everyone
    it denies); AIP-158: total_size and the page offsets count only those, so neither a count nor a short
    page tells the caller that hidden resources exist or where they sit. A filter or order_by applies to the
    messages of those (each described first), before the page is cut."""
    visible = []
    for record in records:
        try:
            await may_see(record)
        except AccessDenied:
            continue
        visible.append(record)
    if query.trivial:
        shown, used = await _messages(visible[offset : offset + limit], message_of, MAX_PAGE_BYTES)
        total = len(visible)
    else:
        chosen, _ = await _messages(visible, message_of)
        chosen = query.apply(chosen)
        shown = _fitting(chosen[offset : offset + limit])
        used, total = len(shown), len(chosen)
    return shown, next_token(offset, used, total), total


def _byte_size(message: Any) -> int:
    return int(type(message).pb(message).ByteSize()) + 4  # and its field tag and length in the list answer


def _fitting(messages: Sequence[M]) -> list[M]:
    """The first ``messages`` whose sizes add up to MAX_PAGE_BYTES at most (the first one whatever its size)."""
    size = 0
    for count, message in enumerate(messages):
        size += _byte_size(message)
        if count and size > MAX_PAGE_BYTES:
            return list(messages[:count])
    return list(messages)


async def _messages(
    records: Sequence[R], message_of: Callable[[R], Awaitable[M]], max_bytes: int | None = None
) -> tuple[list[M], int]:
    """The messages of ``records`` (a record whose policy now denies is left out) and how many records they used:
    all, or with ``max_bytes``, those before the message that would take the size past it (at least one)."""
    shown: list[M] = []
    size = 0
    for used, record in enumerate(records):
        try:  # a policy changed since may_see: still never described
            message = await message_of(record)
        except AccessDenied:
            continue
        size += _byte_size(message)
        if max_bytes is not None and shown and size > max_bytes:
            return shown, used
        shown.append(message)
    return shown, len(records)


async def _may_see_key(call: GcpCall, record: CryptoKeyRecord) -> None:
    """AccessDenied unless the caller may see the crypto key: one rule for Get, List, total_size and the writes
    whose answer describes the key (checked before the write, so a refused one is not made)."""
    await _key_policy_allows(call, record, call.may_describe)


async def _key_policy_allows(call: GcpCall, record: CryptoKeyRecord, check: Callable[[str], Awaitable[None]]) -> None:
    """AccessDenied unless the crypto key's policy allows ``check`` (a version's policy check).

    Cloud KMS's IAM binds on the crypto key; here key policies live on its versions' keystore keys, so the key's
    policy is its primary's. A key without one (MAC, ASYMMETRIC_*, or no version made yet) allows what at least one
    of its versions allows; a key with no version has no policy to deny anything."""
    if record.primary_version is not None:
        version = call.store.version(record.location, record.ring, record.key, record.primary_version)
        await check(version.keystore_key_id)
        return
    versions, _ = call.store.versions(record.location, record.ring, record.key, 0, ALL)
    denied: AccessDenied | None = None
    for version in versions:
        try:
            await check(version.keystore_key_id)
        except AccessDenied as error:
            denied = denied or error
            continue
        return
    if denied is not None:
        raise denied


# ------------------------------------------------------------------ checks of request fields


def _labels(labels: dict[str, str]) -> dict[str, str]:
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(f"a CryptoKey holds at most {MAX_LABELS} labels")
    for key, value in labels.items():
        if not LABEL_KEY.fullmatch(key) or not LABEL_VALUE.fullmatch(value):
            raise InvalidArgument(
                f"invalid label {key[:64]!r}: keys match [a-z][a-z0-9_-]{{0,62}}, values [a-z0-9_-]{{0,63}}"
            )
    return dict(labels)


def _rotation_period(key: kms_v1.CryptoKey) -> int | None:
    if "rotation_period" not in key:
        return None
    seconds = _duration(key, "rotation_period")
    if not MIN_ROTATION_SECONDS <= seconds <= MAX_ROTATION_SECONDS:
        raise InvalidArgument("rotation_period must be at least one day and at most 100 years")
    return int(seconds)


def _next_rotation(key: kms_v1.CryptoKey, now: float) -> float | None:
    next_rotation = _timestamp(key, "next_rotation_time") if "next_rotation_time" in key else None
    if next_rotation is not None and next_rotation < now:
        raise InvalidArgument("next_rotation_time must not be in the past")
    return next_rotation


def _rotation(key: kms_v1.CryptoKey, now: float) -> tuple[int | None, float | None]:
    period, next_rotation = _rotation_period(key), _next_rotation(key, now)
    if period is not None and next_rotation is None:
        raise InvalidArgument("next_rotation_time is required when rotation_period is set")
    return period, next_rotation


def _destroy_days(key: kms_v1.CryptoKey) -> int:
    if "destroy_scheduled_duration" not in key:
        return DEFAULT_DESTROY_DAYS
    seconds = _duration(key, "destroy_scheduled_duration")
    low, high = DESTROY_DAYS
    if seconds % DAY or not low * DAY <= seconds <= high * DAY:
        raise InvalidArgument(f"destroy_scheduled_duration must be whole days from {low} to {high} on this server")
    return int(seconds // DAY)


def _check_template(key: kms_v1.CryptoKey) -> str:
    """The new crypto key's algorithm name (its purpose follows), or InvalidArgument."""
    template = key.version_template
    algorithm = algorithms.template_algorithm(key.purpose, template.algorithm)
    if template.protection_level not in (kms_v1.ProtectionLevel.PROTECTION_LEVEL_UNSPECIFIED, SOFTWARE):
        raise InvalidArgument("this server offers protection level SOFTWARE only")
    if key.import_only or key.crypto_key_backend:
        raise InvalidArgument("imported keys and external key backends are not supported by this server")
    if "key_access_justifications_policy" in key:  # its allowed reasons (none: deny-all) would not be enforced
        raise InvalidArgument("key_access_justifications_policy is not supported by this server")
    return algorithm


def _require_rotation_allowed(algorithm: str, rotation_period: int | None, next_rotation: float | None) -> None:
    """Cloud KMS rotates ENCRYPT_DECRYPT keys only: automatic rotation makes the new version primary, which no
    other key has."""
    if algorithm == algorithms.SYMMETRIC:
        return
    if rotation_period is not None:
        raise InvalidArgument("rotation_period applies to ENCRYPT_DECRYPT CryptoKeys only")
    if next_rotation is not None:
        raise InvalidArgument("next_rotation_time applies to ENCRYPT_DECRYPT CryptoKeys only")


# ------------------------------------------------------------------ versions


async def add_version(
    call: GcpCall, name: names.CryptoKeyName, *, make_primary: bool, algorithm: str = algorithms.SYMMETRIC
) -> VersionRecord:
    """The next version of an existing crypto key; the caller holds ``call.lock``."""
    version = call.store.next_version(name.location, name.ring, name.key)
    record = await _version_key(call, name, version, algorithm)
    await asyncio.to_thread(call.store.add_version, record, make_primary=make_primary)
    return record


async def _version_key(call: GcpCall, name: names.CryptoKeyName, version: int, algorithm: str) -> VersionRecord:
    """The keystore key that holds ``version`` (new, or adopted when an earlier attempt stopped after making it)."""
    alias = name.version(version).keystore_alias
    claim = (name.location, name.ring, name.key, version)
    claimed_before = await asyncio.to_thread(call.store.claim_version, *claim, call.epoch)
    try:
        kind = algorithms.kind_of(algorithm)
        meta = await call.backend.create_key(alias, description="Cloud KMS CryptoKeyVersion", key_spec=kind.key_spec,
                                             key_usage=kind.key_usage)  # fmt: skip
    except AlreadyExists:
        meta = await call.backend.describe_key(alias)
        # adopt only what a crash between the keystore's write and ours left: a key claimed by an earlier attempt
        if not claimed_before or call.store.version_of_keystore_key(meta.key_id) is not None:
            await asyncio.to_thread(call.store.release_version, *claim)
            raise InvalidState(
                f"the keystore alias {alias} already names key {meta.key_id}, which this Cloud KMS "
                f"API did not make for it: remove that alias to add version {version}"
            ) from None
    # Only a refusal releases the claim. Anything else (a call cancelled by its client's deadline, an outage
    # mid-commit) keeps it: the keystore may still make or have made the key, and only a claimed key is adopted.
    except KMSError as error:
        if not error.retryable:
            await asyncio.to_thread(call.store.release_version, *claim)
        raise
    return VersionRecord(name.location, name.ring, name.key, version, meta.key_id, call.epoch)


async def _version_meta(
    call: GcpCall, name: names.CryptoKeyVersionName
) -> tuple[CryptoKeyRecord, VersionRecord, KeyMetadata]:
    key = call.store.crypto_key(name.location, name.ring, name.key)
    record = call.store.version(name.location, name.ring, name.key, name.version)
    await call.authorize(record.keystore_key_id)
    return key, record, await call.backend.describe_key(record.keystore_key_id)


def _require_purpose(key: CryptoKeyRecord, name: object, *purposes: int) -> algorithms.KeyKind:
    kind = algorithms.kind_of(key.algorithm)
    if kind.purpose not in purposes:
        have, need = _enum_name(Purpose, kind.purpose), " or ".join(_enum_name(Purpose, p) for p in purposes)
        raise InvalidState(f"{name} has purpose {have}; this operation needs {need}")
    return kind


def _require_state(
    name: names.CryptoKeyVersionName, meta: KeyMetadata, allowed: tuple[KeyState, ...], wanted: str
) -> None:
    if meta.state not in allowed:
        state = STATE_OF.get(meta.state, State.CRYPTO_KEY_VERSION_STATE_UNSPECIFIED)
        raise InvalidState(f"{name} is not {wanted}, current state is: {_enum_name(State, state)}.")


def _require_enabled(name: names.CryptoKeyVersionName, meta: KeyMetadata) -> None:
    _require_state(name, meta, (KeyState.ENABLED,), "enabled")


ENABLED_OR_DISABLED = (KeyState.ENABLED, KeyState.DISABLED)


# ------------------------------------------------------------------ key rings


async def create_key_ring(call: GcpCall, request: kms_v1.CreateKeyRingRequest) -> kms_v1.KeyRing:
    parent = names.served_location(names.location_name(request.parent, "parent"), call.locations)
    ring = names.check_id(request.key_ring_id, "key_ring_id")
    async with call.lock:
        record = await asyncio.to_thread(call.store.create_key_ring, parent.location, ring, call.epoch)
    return key_ring_message(parent.project, record)


async def get_key_ring(call: GcpCall, request: kms_v1.GetKeyRingRequest) -> kms_v1.KeyRing:
    name = names.key_ring_name(request.name, "name")
    return key_ring_message(name.project, call.store.key_ring(name.location, name.ring))


async def list_key_rings(call: GcpCall, request: kms_v1.ListKeyRingsRequest) -> kms_v1.ListKeyRingsResponse:
    parent = names.location_name(request.parent, "parent")
    query = list_query(request, kms_v1.KeyRing)
    offset, limit = page_window(request.page_size, request.page_token)
    if not query.trivial:
        rings, _ = call.store.key_rings(parent.location, 0, ALL)
        chosen = query.apply([key_ring_message(parent.project, ring) for ring in rings])
        shown = _fitting(chosen[offset : offset + limit])
        return kms_v1.ListKeyRingsResponse(key_rings=shown, total_size=len(chosen),
                                           next_page_token=next_token(offset, len(shown), len(chosen)))  # fmt: skip
    rings, total = call.store.key_rings(parent.location, offset, limit)
    shown = _fitting([key_ring_message(parent.project, ring) for ring in rings])
    return kms_v1.ListKeyRingsResponse(key_rings=shown, next_page_token=next_token(offset, len(shown), total),
                                       total_size=total)  # fmt: skip


# ------------------------------------------------------------------ crypto keys


async def create_crypto_key(call: GcpCall, request: kms_v1.CreateCryptoKeyRequest) -> kms_v1.CryptoKey:
    parent = names.key_ring_name(request.parent, "parent")
    key_id = names.check_id(request.crypto_key_id, "crypto_key_id")
    wanted = request.crypto_key
    algorithm = _check_template(wanted)
    if request.trusted_wrapping_enabled:
        raise InvalidArgument("trusted_wrapping_enabled needs protection level HSM_SINGLE_TENANT; this server offers "
                              "SOFTWARE only")  # fmt: skip
    period, next_rotation = _rotation(wanted, call.epoch)
    _require_rotation_allowed(algorithm, period, next_rotation)
    record = CryptoKeyRecord(
        location=parent.location,
        ring=parent.ring,
        key=key_id,
        created_at=call.epoch,
        destroy_days=_destroy_days(wanted),
        labels=_labels(dict(wanted.labels)),
        rotation_period=period,
        next_rotation=next_rotation,
        algorithm=algorithm,
    )
    name = names.CryptoKeyName(parent.project, parent.location, parent.ring, key_id)
    async with call.lock:
        call.store.key_ring(parent.location, parent.ring)
        try:  # refused before a keystore key is made for it
            call.store.crypto_key(name.location, name.ring, key_id)
        except NotFound:
            pass
        else:
            raise AlreadyExists(f"CryptoKey {key_id} already exists in KeyRing {parent.ring}")
        first = None if request.skip_initial_version_creation else await _version_key(call, name, 1, algorithm)
        # Cloud KMS: only ENCRYPT_DECRYPT keys have a primary version
        await asyncio.to_thread(call.store.create_crypto_key, record, first, primary=algorithm == algorithms.SYMMETRIC)
    return await crypto_key_message(call, parent.project, call.store.crypto_key(name.location, name.ring, key_id))


async def get_crypto_key(call: GcpCall, request: kms_v1.GetCryptoKeyRequest) -> kms_v1.CryptoKey:
    name = names.crypto_key_name(request.name, "name")
    record = call.store.crypto_key(name.location, name.ring, name.key)
    await _may_see_key(call, record)
    return await crypto_key_message(call, name.project, record)


async def list_crypto_keys(call: GcpCall, request: kms_v1.ListCryptoKeysRequest) -> kms_v1.ListCryptoKeysResponse:
    parent = names.key_ring_name(request.parent, "parent")
    query = list_query(request, kms_v1.CryptoKey)
    offset, limit = page_window(request.page_size, request.page_token)
    call.store.key_ring(parent.location, parent.ring)
    keys, _ = call.store.crypto_keys(parent.location, parent.ring, 0, ALL)
    shown, token, total = await _visible_page(keys, functools.partial(_may_see_key, call),
                                              functools.partial(crypto_key_message, call, parent.project),
                                              query, offset, limit)  # fmt: skip
    return kms_v1.ListCryptoKeysResponse(crypto_keys=shown, next_page_token=token, total_size=total)


UPDATABLE_KEY_FIELDS = frozenset({"labels", "rotation_period", "next_rotation_time"})


def update_mask_paths(request: kms_v1.UpdateCryptoKeyRequest | kms_v1.UpdateCryptoKeyVersionRequest,
                      allowed: frozenset[str]) -> set[str]:  # fmt: skip
    paths = set(request.update_mask.paths)
    if not paths:
        raise InvalidArgument("update_mask is required and must name at least one field")
    unknown = sorted(paths - allowed)
    if unknown:
        raise InvalidArgument(f"update_mask: cannot update {', '.join(p[:64] for p in unknown)}; "
                              f"updatable: {', '.join(sorted(allowed))}")  # fmt: skip
    return paths


def _changed_tags(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """The tag keys a label update sets, changes or removes, labels read as the gcp provider writes tags (the
    operator's ownership tags among them)."""
    old, new = labels_to_tags(before), labels_to_tags(after)
    return [key for key in old.keys() | new.keys() if old.get(key) != new.get(key)]


async def update_crypto_key(call: GcpCall, request: kms_v1.UpdateCryptoKeyRequest) -> kms_v1.CryptoKey:
    name = names.crypto_key_name(request.crypto_key.name, "crypto_key.name")
    paths = update_mask_paths(request, UPDATABLE_KEY_FIELDS)
    wanted = request.crypto_key
    # AIP-134: each field as the mask says, from the request only if named (a stray one is not the client's change)
    period = _rotation_period(wanted) if "rotation_period" in paths else None
    next_rotation = _next_rotation(wanted, call.epoch) if "next_rotation_time" in paths else None
    async with call.lock:
        record = call.store.crypto_key(name.location, name.ring, name.key)
        await _may_see_key(call, record)
        if "labels" in paths:
            labels = _labels(dict(wanted.labels))
            await call.authorize_tag_change(_changed_tags(record.labels, labels))
            record = replace(record, labels=labels)
        if "rotation_period" in paths:
            record = replace(record, rotation_period=period)
        if "next_rotation_time" in paths:
            record = replace(record, next_rotation=next_rotation)
        if "rotation_period" in paths or "next_rotation_time" in paths:
            _require_rotation_allowed(record.algorithm, record.rotation_period, record.next_rotation)
        if record.rotation_period is not None and record.next_rotation is None:
            raise InvalidArgument("next_rotation_time is required while rotation_period is set")
        await asyncio.to_thread(call.store.update_crypto_key, record)
    return await crypto_key_message(call, name.project, record)


# ------------------------------------------------------------------ crypto key versions


async def create_crypto_key_version(
    call: GcpCall, request: kms_v1.CreateCryptoKeyVersionRequest
) -> kms_v1.CryptoKeyVersion:
    parent = names.crypto_key_name(request.parent, "parent")
    wanted = request.crypto_key_version
    if wanted.state not in (State.CRYPTO_KEY_VERSION_STATE_UNSPECIFIED, State.ENABLED):
        raise InvalidArgument("a new CryptoKeyVersion starts ENABLED")
    if "external_protection_level_options" in wanted:
        raise InvalidArgument("external key versions are not supported by this server")
    if wanted.trusted_wrapping_enabled:
        raise InvalidArgument("trusted_wrapping_enabled needs protection level HSM_SINGLE_TENANT; this server offers "
                              "SOFTWARE only")  # fmt: skip
    async with call.lock:
        key = call.store.crypto_key(parent.location, parent.ring, parent.key)
        if wanted.algorithm not in (
            Algorithm.CRYPTO_KEY_VERSION_ALGORITHM_UNSPECIFIED,
            algorithms.algorithm_value(key.algorithm),
        ):
            kind = algorithms.kind_of(key.algorithm)
            raise InvalidArgument(f"algorithm {_enum_name(Algorithm, wanted.algorithm)} does not suit {parent} "
                                  f"(purpose {_enum_name(Purpose, kind.purpose)}, {key.algorithm})")  # fmt: skip
        # Cloud KMS's cryptoKeyVersions.create is granted on the crypto key: here, by the key's policy (its primary's,
        # else one of its versions'), for the call's action; a key whose versions all deny the caller gets none
        await _key_policy_allows(call, key, call.authorize)
        # Cloud KMS: a new symmetric version becomes primary only if the key has none; other keys have no primary
        make_primary = key.primary_version is None and key.algorithm == algorithms.SYMMETRIC
        record = await add_version(call, parent, make_primary=make_primary, algorithm=key.algorithm)
    return await version_message(call, parent.version(record.version), record, key.algorithm)


async def get_crypto_key_version(call: GcpCall, request: kms_v1.GetCryptoKeyVersionRequest) -> kms_v1.CryptoKeyVersion:
    name = names.version_name(request.name, "name")
    key, record, meta = await _version_meta(call, name)
    return version_message_of(name, record, meta, key.algorithm)


async def list_crypto_key_versions(
    call: GcpCall, request: kms_v1.ListCryptoKeyVersionsRequest
) -> kms_v1.ListCryptoKeyVersionsResponse:
    parent = names.crypto_key_name(request.parent, "parent")
    query = list_query(request, kms_v1.CryptoKeyVersion)
    offset, limit = page_window(request.page_size, request.page_token)
    key = call.store.crypto_key(parent.location, parent.ring, parent.key)
    versions, _ = call.store.versions(parent.location, parent.ring, parent.key, 0, ALL)
    shown, token, total = await _visible_page(versions, lambda v: call.may_describe(v.keystore_key_id),
                                              lambda v: version_message(call, parent.version(v.version), v,
                                                                        key.algorithm),
                                              query, offset, limit)  # fmt: skip
    return kms_v1.ListCryptoKeyVersionsResponse(crypto_key_versions=shown, next_page_token=token, total_size=total)


async def update_crypto_key_version(
    call: GcpCall, request: kms_v1.UpdateCryptoKeyVersionRequest
) -> kms_v1.CryptoKeyVersion:
    name = names.version_name(request.crypto_key_version.name, "crypto_key_version.name")
    update_mask_paths(request, frozenset({"state"}))
    target = request.crypto_key_version.state
    if target not in (State.ENABLED, State.DISABLED):
        raise InvalidArgument("state can only be updated to ENABLED or DISABLED")
    async with call.lock:
        key, record, meta = await _version_meta(call, name)
        _require_state(name, meta, ENABLED_OR_DISABLED, "ENABLED or DISABLED")
        if target == State.ENABLED and meta.state is KeyState.DISABLED:
            meta = await call.backend.enable_key(record.keystore_key_id)
        elif target == State.DISABLED and meta.state is KeyState.ENABLED:
            meta = await call.backend.disable_key(record.keystore_key_id)
    return version_message_of(name, record, meta, key.algorithm)


async def update_crypto_key_primary_version(
    call: GcpCall, request: kms_v1.UpdateCryptoKeyPrimaryVersionRequest
) -> kms_v1.CryptoKey:
    name = names.crypto_key_name(request.name, "name")
    version_id = request.crypto_key_version_id
    if not names.VERSION_PATTERN.fullmatch(version_id or ""):
        raise InvalidArgument("crypto_key_version_id must be a version number")
    version = name.version(int(version_id))
    async with call.lock:
        current, record, meta = await _version_meta(call, version)
        _require_purpose(current, name, Purpose.ENCRYPT_DECRYPT)  # only they have a primary version
        _require_enabled(version, meta)
        key = replace(current, primary_version=record.version)
        await _may_see_key(call, key)
        await asyncio.to_thread(call.store.update_crypto_key, key)
    return await crypto_key_message(call, name.project, key)


async def destroy_crypto_key_version(
    call: GcpCall, request: kms_v1.DestroyCryptoKeyVersionRequest
) -> kms_v1.CryptoKeyVersion:
    name = names.version_name(request.name, "name")
    async with call.lock:
        key, record, meta = await _version_meta(call, name)
        _require_state(name, meta, ENABLED_OR_DISABLED, "ENABLED or DISABLED")
        meta = await _keystore(call).schedule_key_deletion(record.keystore_key_id, key.destroy_days,
                                                           window=DESTROY_DAYS)  # fmt: skip
    return version_message_of(name, record, meta, key.algorithm)


async def restore_crypto_key_version(
    call: GcpCall, request: kms_v1.RestoreCryptoKeyVersionRequest
) -> kms_v1.CryptoKeyVersion:
    name = names.version_name(request.name, "name")
    async with call.lock:
        key, record, meta = await _version_meta(call, name)
        _require_state(name, meta, (KeyState.PENDING_DELETION,), "DESTROY_SCHEDULED")
        meta = await call.backend.cancel_key_deletion(record.keystore_key_id)  # back DISABLED, as on Cloud KMS
    return version_message_of(name, record, meta, key.algorithm)


# ------------------------------------------------------------------ cryptography


def _check_length(field: str, data: bytes, limit: int) -> None:
    """Cloud KMS's size refusal, in its words."""
    if len(data) > limit:
        raise InvalidArgument(f"Request field {field} must have length of at least 0, but not more than {limit}. "
                              f"Provided value had length {len(data)}.")  # fmt: skip


def _keystore(call: GcpCall) -> LocalBackend:
    """The server's own keystore, which seals Cloud KMS's sizes (the Backend protocol's seal takes AWS's)."""
    if not isinstance(call.backend, LocalBackend):
        raise InvalidArgument("the Cloud KMS wire encrypts in the server's own keystore only")
    return call.backend


def _aad_of(request: kms_v1.EncryptRequest | kms_v1.DecryptRequest) -> bytes:
    aad = request.additional_authenticated_data
    _check_length("additional_authenticated_data", aad, MAX_DATA_BYTES)
    return aad


async def encrypt(call: GcpCall, request: kms_v1.EncryptRequest) -> kms_v1.EncryptResponse:
    target = names.key_or_version_name(request.name, "name")
    plaintext, aad = request.plaintext, _aad_of(request)
    _check_length("plaintext", plaintext, MAX_DATA_BYTES)
    if aad.startswith(DATA_AAD_MARKER):
        raise InvalidArgument("additional_authenticated_data must not begin with kubekms/encrypt-data and a NUL "
                              "byte: that prefix is reserved for the v1.0 wire's encrypt-data")  # fmt: skip
    verified_plaintext = _check_crc(request, "plaintext", "plaintext_crc32c", plaintext)
    verified_aad = _check_crc(request, "additional_authenticated_data", "additional_authenticated_data_crc32c", aad)
    if not plaintext:
        raise InvalidArgument("plaintext is required")
    if isinstance(target, names.CryptoKeyName):
        key = call.store.crypto_key(target.location, target.ring, target.key)
        _require_purpose(key, target, Purpose.ENCRYPT_DECRYPT)
        if key.primary_version is None:
            raise InvalidState(f"{target} has no primary CryptoKeyVersion")
        target = target.version(key.primary_version)
    key, record, meta = await _version_meta(call, target)
    _require_purpose(key, target, Purpose.ENCRYPT_DECRYPT)
    _require_enabled(target, meta)
    sealed = await _keystore(call).encrypt_data_key(record.keystore_key_id, plaintext, aad=aad, limits=SEAL_LIMITS)
    return kms_v1.EncryptResponse(
        name=str(target),
        ciphertext=sealed.ciphertext,
        ciphertext_crc32c=crc32c(sealed.ciphertext),
        verified_plaintext_crc32c=verified_plaintext,
        verified_additional_authenticated_data_crc32c=verified_aad,
        protection_level=SOFTWARE,
    )


async def decrypt(call: GcpCall, request: kms_v1.DecryptRequest) -> kms_v1.DecryptResponse:
    name = names.crypto_key_name(request.name, "name")
    blob, aad = request.ciphertext, _aad_of(request)
    _check_length("ciphertext", blob, MAX_CIPHERTEXT_BYTES)
    _check_crc(request, "ciphertext", "ciphertext_crc32c", blob)
    _check_crc(request, "additional_authenticated_data", "additional_authenticated_data_crc32c", aad)
    key = call.store.crypto_key(name.location, name.ring, name.key)
    _require_purpose(key, name, Purpose.ENCRYPT_DECRYPT)
    try:
        made_by = ciphertext_format.parse(blob).key_id
    except InvalidCiphertext:
        raise InvalidArgument(DECRYPTION_FAILED) from None
    record = call.store.version_of_keystore_key(made_by)
    if record is None or (record.location, record.ring, record.key) != (name.location, name.ring, name.key):
        raise InvalidArgument(DECRYPTION_FAILED)
    version = name.version(record.version)
    await call.authorize(record.keystore_key_id)
    _require_enabled(version, await call.backend.describe_key(record.keystore_key_id))
    if aad.startswith(DATA_AAD_MARKER):  # an encrypt-data ciphertext's AAD: decrypt-datakey never opens one
        raise InvalidArgument(DECRYPTION_FAILED)
    try:
        plaintext = await _keystore(call).decrypt_data_key(record.keystore_key_id, blob, aad=aad, limits=SEAL_LIMITS)
    except InvalidCiphertext:
        raise InvalidArgument(DECRYPTION_FAILED) from None
    return kms_v1.DecryptResponse(
        plaintext=plaintext,
        plaintext_crc32c=crc32c(plaintext),
        used_primary=record.version == key.primary_version,
        protection_level=SOFTWARE,
    )


async def generate_random_bytes(
    call: GcpCall, request: kms_v1.GenerateRandomBytesRequest
) -> kms_v1.GenerateRandomBytesResponse:
    names.served_location(names.location_name(request.location, "location"), call.locations)
    low, high = RANDOM_BYTES
    if not low <= request.length_bytes <= high:
        raise InvalidArgument(f"length_bytes must be from {low} to {high}")
    if request.protection_level not in (kms_v1.ProtectionLevel.PROTECTION_LEVEL_UNSPECIFIED,
                                        kms_v1.ProtectionLevel.HSM, SOFTWARE):  # fmt: skip
        raise InvalidArgument("protection_level must be HSM or SOFTWARE")
    data = await call.backend.generate_random(request.length_bytes)
    return kms_v1.GenerateRandomBytesResponse(data=data, data_crc32c=crc32c(data))


async def _usable_version(
    call: GcpCall, value: str, *purposes: int
) -> tuple[names.CryptoKeyVersionName, CryptoKeyRecord, VersionRecord, algorithms.KeyKind]:
    """The ENABLED version named by ``value`` of a crypto key of one of ``purposes``, authorised by its key policy."""
    name = names.version_name(value, "name")
    key, record, meta = await _version_meta(call, name)
    kind = _require_purpose(key, name, *purposes)
    _require_enabled(name, meta)
    return name, key, record, kind


async def asymmetric_sign(call: GcpCall, request: kms_v1.AsymmetricSignRequest) -> kms_v1.AsymmetricSignResponse:
    name, _, record, kind = await _usable_version(call, request.name, Purpose.ASYMMETRIC_SIGN)
    digest_field = kms_v1.Digest.pb(request.digest).WhichOneof("digest") if "digest" in request else None
    if (digest_field is None) == (not request.data):
        raise InvalidArgument("exactly one of digest and data is required")
    if digest_field is not None:
        if digest_field != kind.digest:
            raise InvalidArgument(f"digest must be digest.{kind.digest} for {name}'s algorithm")
        message = getattr(request.digest, digest_field)
        verified_digest = _check_crc(request, "digest", "digest_crc32c", message)
        verified_data = False
    else:
        message = request.data
        verified_data = _check_crc(request, "data", "data_crc32c", message)
        verified_digest = False
    signed = await call.backend.sign(record.keystore_key_id, message, algorithm=kind.algorithm,
                                     digest=digest_field is not None)  # fmt: skip
    return kms_v1.AsymmetricSignResponse(
        signature=signed.data, signature_crc32c=crc32c(signed.data), verified_digest_crc32c=verified_digest,
        verified_data_crc32c=verified_data, name=str(name), protection_level=SOFTWARE,
    )  # fmt: skip


async def get_public_key(call: GcpCall, request: kms_v1.GetPublicKeyRequest) -> kms_v1.PublicKey:
    name, key, record, _ = await _usable_version(
        call, request.name, Purpose.ASYMMETRIC_SIGN, Purpose.ASYMMETRIC_DECRYPT
    )
    wanted = request.public_key_format
    if wanted not in (PublicKeyFormat.PUBLIC_KEY_FORMAT_UNSPECIFIED, PublicKeyFormat.PEM, PublicKeyFormat.DER):
        raise InvalidArgument(f"public_key_format {_enum_name(PublicKeyFormat, wanted)} is for post-quantum "
                              f"algorithms; {name} is {key.algorithm}: ask for PEM or DER")  # fmt: skip
    der = await call.backend.get_public_key(record.keystore_key_id)
    answer = kms_v1.PublicKey(algorithm=algorithms.algorithm_value(key.algorithm), name=str(name),
                              protection_level=SOFTWARE)  # fmt: skip
    pem = (
        serialization.load_der_public_key(der)
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    if wanted == PublicKeyFormat.PUBLIC_KEY_FORMAT_UNSPECIFIED:  # Cloud KMS: pem; a format asked for: public_key
        answer.pem, answer.pem_crc32c = pem, crc32c(pem.encode())  # type: ignore[assignment]  # proto-plus Int64Value
        return answer
    data = pem.encode() if wanted == PublicKeyFormat.PEM else der
    answer.public_key_format = wanted
    answer.public_key = kms_v1.ChecksummedData(data=data, crc32c_checksum=crc32c(data))
    return answer


async def asymmetric_decrypt(
    call: GcpCall, request: kms_v1.AsymmetricDecryptRequest
) -> kms_v1.AsymmetricDecryptResponse:
    _, _, record, kind = await _usable_version(call, request.name, Purpose.ASYMMETRIC_DECRYPT)
    verified = _check_crc(request, "ciphertext", "ciphertext_crc32c", request.ciphertext)
    try:
        opened = await call.backend.decrypt_asymmetric(record.keystore_key_id, request.ciphertext,
                                                       algorithm=kind.algorithm)  # fmt: skip
    except InvalidCiphertext:
        raise InvalidArgument(DECRYPTION_FAILED) from None
    return kms_v1.AsymmetricDecryptResponse(plaintext=opened.data, plaintext_crc32c=crc32c(opened.data),
                                            verified_ciphertext_crc32c=verified, protection_level=SOFTWARE)  # fmt: skip


async def mac_sign(call: GcpCall, request: kms_v1.MacSignRequest) -> kms_v1.MacSignResponse:
    name, _, record, kind = await _usable_version(call, request.name, Purpose.MAC)
    verified_data = _check_crc(request, "data", "data_crc32c", request.data)
    mac = await call.backend.generate_mac(record.keystore_key_id, request.data, algorithm=kind.algorithm)
    return kms_v1.MacSignResponse(name=str(name), mac=mac.data, mac_crc32c=crc32c(mac.data),
                                  verified_data_crc32c=verified_data, protection_level=SOFTWARE)  # fmt: skip


async def mac_verify(call: GcpCall, request: kms_v1.MacVerifyRequest) -> kms_v1.MacVerifyResponse:
    name, _, record, kind = await _usable_version(call, request.name, Purpose.MAC)
    verified_data = _check_crc(request, "data", "data_crc32c", request.data)
    verified_mac = _check_crc(request, "mac", "mac_crc32c", request.mac)
    success = await call.backend.verify_mac(record.keystore_key_id, request.data, request.mac,
                                            algorithm=kind.algorithm)  # fmt: skip
    return kms_v1.MacVerifyResponse(name=str(name), success=success, verified_data_crc32c=verified_data,
                                    verified_mac_crc32c=verified_mac, verified_success_integrity=success,
                                    protection_level=SOFTWARE)  # fmt: skip


# ------------------------------------------------------------------ automatic rotation


async def rotate_due_keys(call: GcpCall, project: str) -> tuple[list[str], dict[str, str]]:
    """Add a primary version to every crypto key whose next_rotation_time passed.

    Returns the names rotated, and the names refused with why (e.g. a foreign key holding the next
    version's alias): one refused key does not stop the others, and it is tried again next pass.
    """
    rotated, refused = [], {}
    async with call.lock:
        for key in call.store.due_for_rotation(call.epoch):
            name = names.CryptoKeyName(project, key.location, key.ring, key.key)
            try:
                # a key of another purpose has no primary (a schedule stored before create/update refused one)
                await add_version(call, name, make_primary=key.algorithm == algorithms.SYMMETRIC,
                                  algorithm=key.algorithm)  # fmt: skip
            except KMSError as error:
                refused[str(name)] = error.message
                continue
            next_rotation = key.next_rotation
            if key.rotation_period is None or next_rotation is None:
                next_rotation = None
            else:
                while next_rotation <= call.epoch:
                    next_rotation += key.rotation_period
            rotated_key = replace(call.store.crypto_key(key.location, key.ring, key.key), next_rotation=next_rotation)
            await asyncio.to_thread(call.store.update_crypto_key, rotated_key)
            rotated.append(str(name))
    return rotated, refused
