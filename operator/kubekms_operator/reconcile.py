"""What a KMSKey needs from the backend: plain logic over the backend protocol, no kopf.

Given the desired key and what the backend says, :class:`KeyReconciler` makes the calls
that converge the key and returns one :class:`Change` per call that changed something
(each becomes an Event). Creation is idempotent: the key carries the object's UID as a
tag and is found again by it, so a retry after a crash or a timeout never makes a second key.
Where no earlier attempt can have made a key (the caller says so), the search is left out and
the primary alias, which the backend refuses twice, stands guard instead: one call fewer per
key, and one fewer again for the alias check before creating.

Ownership: a KMSKey changes or deletes only a key tagged with its own UID, or the key its
``spec.adopt`` names. Taking that one over needs the KMSBackend's consent and no other existing
KMSKey managing it, and tags it with the UID before anything else: from then on the tag alone makes
it the object's (no consent asked again, e.g. after an upgrade that added the consent). A key found
any other way (under a wanted alias, in the status of an object restored with a new UID) is
reported and never touched.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace

from cryptography.hazmat.primitives import serialization

from kubekms.backend import ECC_KEY_SPECS, RSA_KEY_SPECS, Backend, KeyMetadata, KeyState, NoKeyPolicies, NoKeyTypes
from kubekms.errors import AlreadyExists, InvalidArgument, NotFound, Reason
from kubekms_operator.conditions import timestamp
from kubekms_operator.spec import (
    OPERATOR_TAG_PREFIX,
    OWNER_TAG,
    OWNER_UID_TAG,
    ROTATE_TAG,
    DesiredKey,
    check_convergeable,
    same_policy,
)

log = logging.getLogger("kubekms.operator.reconcile")

ASYMMETRIC_KEY_SPECS = (*RSA_KEY_SPECS, *ECC_KEY_SPECS)
# ("<ns>/<name>", uid) -> that object still exists; OwnerLeaving while it exists but is being deleted
OwnerAlive = Callable[[str, str], Awaitable[bool]]
KeyRecorder = Callable[[KeyMetadata], Awaitable[None]]
AdoptionConsent = Callable[[], None]  # raises unless the KMSBackend lets this KMSKey take over its keys


def _no_consent_rule() -> None:
    """The default consent: the caller has no rule to apply (the operator always passes its KMSBackend's)."""


def owns(key: KeyMetadata, uid: str) -> bool:
    """The key is the object's: it carries the object's UID (written at creation or at the take-over)."""
    return key.tags.get(OWNER_UID_TAG) == uid


class _TakeOvers:
    """One take-over of a key at a time in this process (one operator replica leads): of two KMSKeys
    adopting one key at once, the second then finds the first's owner tag instead of overwriting it."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def lock(self, key_id: str) -> asyncio.Lock:
        lock = self._locks.get(key_id)
        if lock is None:
            lock = self._locks[key_id] = asyncio.Lock()
        return lock


_TAKE_OVERS = _TakeOvers()


@dataclass(frozen=True)
class Change:
    reason: str  # CamelCase, the Event's reason
    message: str
    drift: bool = False  # undoes a change made outside Kubernetes, whatever ran the reconciliation


class OwnedByOther(Exception):
    """The key's tags say another, still existing KMSKey manages it."""


class OwnerLeaving(Exception):
    """The KMSKey the key's tags name still exists but is being deleted: looked at again until it is gone
    (raised by the OwnerAlive callable; the key is not taken over meanwhile)."""


class KeyGone(Exception):
    """The key the status names no longer exists or was destroyed."""


class AliasInUse(Exception):
    """An alias the spec wants already names a key this object does not own."""


class PolicyNotSupported(Exception):
    """spec.policy names a policy, and the backend's provider has no key policies."""


class KeyTypeNotSupported(Exception):
    """spec.keySpec is asymmetric or HMAC, and the backend's provider offers only symmetric keys."""


def check_offered(backend: Backend, desired: DesiredKey) -> None:
    """Refuse, before any call, what the backend's provider cannot do for this spec."""
    label = getattr(backend, "provider_label", "of this backend")
    if desired.policy is not None and isinstance(backend, NoKeyPolicies):
        raise PolicyNotSupported(f"spec.policy: provider {label} has no key policies; remove spec.policy")
    if not desired.symmetric and isinstance(backend, NoKeyTypes):
        raise KeyTypeNotSupported(
            f"spec.keySpec {desired.key_spec}: provider {label} offers AES_256 keys only through kubekms"
        )


def pem_public_key(der: bytes) -> str:
    """A DER SubjectPublicKeyInfo as PEM, the form status.publicKey carries."""
    key = serialization.load_der_public_key(der)
    pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem.decode()


@dataclass(frozen=True)
class Converged:
    key: KeyMetadata
    changes: list[Change]
    rotate_request: str  # the kubekms.io/rotate value now handled
    kept_alias: str = ""  # why an alias spec.aliases dropped still names the key ('' none does)


class KeyReconciler:
    def __init__(
        self,
        backend: Backend,
        desired: DesiredKey,
        owner_alive: OwnerAlive,
        record: KeyRecorder | None = None,
        *,
        consent: AdoptionConsent = _no_consent_rule,
    ) -> None:
        self._backend = backend
        self._consent = consent
        self._desired = desired
        self._owner_alive = owner_alive
        self._record = record
        self._unrecorded: KeyMetadata | None = None
        self._made: list[Change] = []
        self._policy_applied = False  # the key was created with spec.policy in this run: no need to read it back
        self._kept_alias = ""

    async def _chosen(self, key: KeyMetadata) -> None:
        """A key was just created or found: its id must reach status before the key changes again."""
        self._unrecorded = key

    @property
    def made(self) -> list[Change]:
        """Every change made in the backend so far, also when a later call failed (each must become an Event)."""
        return list(self._made)

    @property
    def unrecorded(self) -> KeyMetadata | None:
        """A key chosen but not yet passed to ``record`` (the caller writes it with its own status patch)."""
        return self._unrecorded

    async def _before_change(self) -> None:
        if self._unrecorded is not None and self._record is not None:
            await self._record(self._unrecorded)
        self._unrecorded = None

    async def find_or_create(self, known_key_id: str, *, may_exist: bool = True) -> tuple[KeyMetadata, list[Change]]:
        check_convergeable(self._desired)
        check_offered(self._backend, self._desired)
        key, changes = await self._find_or_create(known_key_id, may_exist=may_exist)
        self._made += changes
        return key, changes

    async def _find_or_create(self, known_key_id: str, *, may_exist: bool) -> tuple[KeyMetadata, list[Change]]:
        """The object's key: the one in status, the adopted one, the one tagged with our UID, or a new one.

        ``may_exist=False``: no earlier attempt can have created a key for this object (the
        caller knows), so neither the tag search nor the primary alias's check comes first; an
        alias refused at creation is looked at then.

        A key chosen here is passed to ``record`` before :meth:`converge` makes its first
        change; when nothing needs changing, the caller's status write right after carries the
        id. Either way the id reaches status before anything else happens to the key.
        """
        desired = self._desired
        if known_key_id:
            try:
                key = await self._backend.describe_key(known_key_id)
            except NotFound:
                raise KeyGone(f"key {known_key_id} no longer exists in the backend") from None
            if owns(key, desired.owner.uid):
                return key, []
            return await self._check_known(key)
        if desired.adopt is not None:
            key = await self._backend.describe_key(desired.adopt.target)
            if owns(key, desired.owner.uid):  # taken over earlier; its id did not reach status
                await self._chosen(key)
                return key, [Change("Found", f"found key {key.key_id} adopted earlier by this object")]
            key = await self._take_over(key)
            await self._chosen(key)
            return key, [self._adopted(key)]
        found = []
        if may_exist:
            found = [
                key
                for key in await self._backend.find_keys_by_tag(OWNER_UID_TAG, desired.owner.uid)
                if key.state != KeyState.DESTROYED
            ]
        if found:
            # A tag search may leave out aliases: read the key itself.
            key = await self._backend.describe_key(min(found, key=lambda k: k.created_at).key_id)
            if len(found) > 1:
                log.warning(
                    "more than one key carries this object's uid; using the oldest",
                    extra={"fields": {"keys": [k.key_id for k in found], "owner": desired.owner.reference}},
                )
            await self._chosen(key)
            return key, [Change("Found", f"found key {key.key_id} created earlier for this object")]
        checked = desired.wanted_aliases() if may_exist else desired.wanted_aliases() - {desired.primary_alias()}
        for alias in sorted(checked):  # before creating: no half-made key beside a taken alias
            holder = await self._alias_holder(alias)
            if holder is not None:
                return await self._taken(alias, holder)
        try:
            key = await self._backend.create_key(
                desired.primary_alias(),
                description=desired.description,
                key_spec=desired.key_spec,
                key_usage=desired.key_usage,
                tags=desired.wanted_tags(),
                policy=desired.policy,
            )
        except AlreadyExists:
            # Taken: before any check (may_exist=False) or since the check above (another KMSKey
            # asking for it too).
            holder = await self._alias_holder(desired.primary_alias())
            if holder is None:
                raise
            return await self._taken(desired.primary_alias(), holder)
        await self._chosen(key)
        self._policy_applied = desired.policy is not None
        return key, [Change("Created", f"created key {key.key_id} ({desired.primary_alias()})")]

    async def _check_known(self, key: KeyMetadata) -> tuple[KeyMetadata, list[Change]]:
        """The key in status, not tagged with this object's UID: ours only as spec.adopt's key, taken over
        now (e.g. this object was restored from a backup with a new UID). status.keyId alone proves nothing:
        whoever may write kmskeys/status could name any key of the backend there."""
        if await self._is_adopt_target(key):
            key = await self._take_over(key)
            return key, [self._adopted(key)]
        if key.tags.get(OWNER_UID_TAG):
            await self._check_adoptable(key)  # another living KMSKey manages it: OwnedByOther
            raise OwnedByOther(f"key {key.key_id} was {_former_owner(key)}; {_left_untouched(key)}")
        raise OwnedByOther(f"key {key.key_id} {_not_tagged_ours(key)}; {_left_untouched(key)}")

    def _adopted(self, key: KeyMetadata) -> Change:
        target = self._desired.adopt.target if self._desired.adopt is not None else key.key_id
        return Change("Adopted", f"adopted existing key {key.key_id} ({target})")

    async def _take_over(self, key: KeyMetadata) -> KeyMetadata:
        """spec.adopt's key, not tagged with this object's UID yet: with the KMSBackend's consent and no other
        living owner, tag it ours before anything else, then read it back. Another KMSKey's take-over may
        have written its tag last (another operator process): then OwnedByOther, nothing else changed."""
        owner = self._desired.owner
        async with _TAKE_OVERS.lock(key.key_id):
            key = await self._backend.describe_key(key.key_id)
            if owns(key, owner.uid):
                return key
            if key.state == KeyState.DESTROYED:
                raise KeyGone(f"key {key.key_id} was destroyed")
            self._consent()
            await self._check_adoptable(key)
            if key.state == KeyState.PENDING_DELETION:  # such a key takes no tags
                await self._cancel_deletion(key.key_id)
            await self._backend.tag_key(key.key_id, owner.tags())
            key = await self._backend.describe_key(key.key_id)
        if not owns(key, owner.uid):
            await self._check_adoptable(key)
            raise OwnedByOther(f"key {key.key_id} was taken over by another KMSKey at the same time")
        return key

    async def _is_adopt_target(self, key: KeyMetadata) -> bool:
        """The key spec.adopt names (under any spelling)."""
        adopt = self._desired.adopt
        if adopt is None:
            return False
        if adopt.target not in (key.key_id, key.alias, *key.aliases):
            try:  # another spelling of the same key (an ARN, an alias/ prefix)
                if (await self._backend.describe_key(adopt.target)).key_id != key.key_id:
                    return False
            except NotFound:
                return False
        return True

    async def _check_adoptable(self, key: KeyMetadata) -> None:
        owner_uid = key.tags.get(OWNER_UID_TAG)
        if owner_uid and owner_uid != self._desired.owner.uid:
            reference = key.tags.get(OWNER_TAG, "")
            try:
                alive = await self._owner_alive(reference, owner_uid)
            except OwnerLeaving:  # retried: a key moved between KMSKeys is taken over once the old one is gone
                raise OwnerLeaving(
                    f"key {key.key_id} is managed by KMSKey {reference or owner_uid}, which is being deleted: "
                    "it is taken over once that object is gone"
                ) from None
            if alive:
                raise OwnedByOther(f"key {key.key_id} is managed by KMSKey {reference or owner_uid}")

    async def _owner_exists(self, reference: str, owner_uid: str) -> bool:
        """The owner KMSKey exists, being deleted or not."""
        try:
            return await self._owner_alive(reference, owner_uid)
        except OwnerLeaving:
            return True

    async def _taken(self, alias: str, holder: KeyMetadata) -> tuple[KeyMetadata, list[Change]]:
        """A wanted alias names ``holder`` already: ours (missed by a lagging tag search, or made by an
        earlier attempt), else AliasInUse."""
        if holder.tags.get(OWNER_UID_TAG) != self._desired.owner.uid:
            raise await self._alias_in_use(alias, holder)
        await self._chosen(holder)
        return holder, [Change("Found", f"found key {holder.key_id} under alias {alias}")]

    async def _alias_holder(self, alias: str) -> KeyMetadata | None:
        try:
            return await self._backend.describe_key(alias)
        except NotFound:
            return None

    async def _alias_in_use(self, alias: str, holder: KeyMetadata) -> AliasInUse:
        owner_uid, reference = holder.tags.get(OWNER_UID_TAG), holder.tags.get(OWNER_TAG, "")
        if owner_uid == self._desired.owner.uid:
            return AliasInUse(f"alias {alias} names key {holder.key_id}, another key made for this object")
        if owner_uid and await self._owner_exists(reference, owner_uid):
            return AliasInUse(
                f"alias {alias} already names key {holder.key_id}, managed by KMSKey {reference}; "
                "it is left untouched: choose another alias"
            )
        whose = _former_owner(holder) if owner_uid else "which kubekms did not create"
        return AliasInUse(
            f"alias {alias} already names key {holder.key_id}, {whose}; {_left_untouched(holder)}, "
            "or choose another alias"
        )

    async def converge(self, key: KeyMetadata, handled_rotate_request: str, known_alias: str = "") -> Converged:
        """``known_alias``: the key's primary alias as the last status write recorded it ('' unknown)."""
        desired, backend, key_id = self._desired, self._backend, key.key_id
        first = len(self._made)
        changes = self._made  # appended as each call succeeds: a later failure must not hide it
        if key.state == KeyState.DESTROYED:
            raise KeyGone(f"key {key_id} was destroyed")
        if key.state == KeyState.PENDING_DELETION:
            key = await self._cancel_deletion(key_id)
        if desired.enabled and key.state == KeyState.DISABLED:
            await self._before_change()
            key = await backend.enable_key(key_id)
            changes.append(Change("Enabled", f"enabled key {key_id}"))
        rotate_request = handled_rotate_request
        if desired.rotate_request and desired.rotate_request != handled_rotate_request:
            key, rotated = await self._rotate_once(key, desired.rotate_request)
            rotate_request = desired.rotate_request
            if rotated:
                changes.append(
                    Change("Rotated", f"rotated key {key_id} on request; current version {key.current_version}")
                )
        if key.description != desired.description:
            await self._before_change()
            await backend.update_description(key_id, desired.description)
            changes.append(Change("DescriptionUpdated", f"updated the description of key {key_id}"))
        rotation_differs = key.rotation_enabled != desired.rotation_enabled or (
            desired.rotation_enabled and key.rotation_interval_days != desired.rotation_days
        )
        if rotation_differs:
            await self._before_change()
            await backend.set_rotation(key_id, enabled=desired.rotation_enabled, interval_days=desired.rotation_days)
            setting = f"every {desired.rotation_days} days" if desired.rotation_enabled else "off"
            changes.append(Change("RotationUpdated", f"automatic rotation of key {key_id}: {setting}"))
        key = await self._rename(key, known_alias)
        await self._converge_aliases(key)
        await self._converge_tags(key)
        await self._converge_policy(key)
        if not desired.enabled and key.state == KeyState.ENABLED:
            await self._before_change()
            await backend.disable_key(key_id)
            changes.append(Change("Disabled", f"disabled key {key_id}"))
        if len(changes) > first:
            key = await backend.describe_key(key_id)
        return Converged(key, changes[first:], rotate_request, self._kept_alias)

    async def _cancel_deletion(self, key_id: str) -> KeyMetadata:
        await self._before_change()
        key = await self._backend.cancel_key_deletion(key_id)
        self._made.append(Change("DeletionCancelled", f"cancelled the scheduled deletion of key {key_id}"))
        return key

    async def _rotate_once(self, key: KeyMetadata, request: str) -> tuple[KeyMetadata, bool]:
        """Rotate for ``request`` unless that was done already, even if no status write ever said so.

        The key's ROTATE_TAG is written before the rotation and names the request and the
        version it found: a retry that sees it with a newer current version knows the rotation
        happened (after a refused status write, a crash, a restart); with the same version, the
        rotation call never took effect and is made now.
        """
        marked_at = _marked_version(key.tags.get(ROTATE_TAG, ""), request)
        if marked_at is not None and key.current_version > marked_at:
            return key, False
        await self._before_change()
        if marked_at is None:
            await self._backend.tag_key(key.key_id, {ROTATE_TAG: _rotation_mark(request, key.current_version)})
        return await self._backend.rotate_key(key.key_id), True

    async def _converge_aliases(self, key: KeyMetadata) -> None:
        if not self._desired.aliases and self._desired.adopt is not None:
            return  # an adopted key keeps its names unless the spec lists some
        wanted, current = self._desired.wanted_aliases(), set(key.aliases)
        changes = self._made
        for alias in sorted(wanted - current):
            await self._before_change()
            try:
                await self._backend.create_alias(key.key_id, alias)
            except AlreadyExists as error:
                raise await self._refused_alias(alias, error) from None  # moved elsewhere: report, never follow
            changes.append(Change("AliasAdded", f"alias {alias} now names key {key.key_id}"))
        for alias in sorted(current - wanted - {key.alias}):  # the primary alias cannot be removed
            await self._before_change()
            await self._backend.delete_alias(key.key_id, alias)
            changes.append(Change("AliasRemoved", f"alias {alias} removed from key {key.key_id}"))

    async def _refused_alias(self, alias: str, error: AlreadyExists) -> Exception:
        """What to raise for an alias the backend refused as taken: AliasInUse naming its holder, if one is found."""
        holder = await self._alias_holder(alias)
        return error if holder is None else await self._alias_in_use(alias, holder)

    async def _rename(self, key: KeyMetadata, known_alias: str) -> KeyMetadata:
        """The key's primary alias (Huawei's key_alias, a single-alias cloud's only one) is not in the spec: rename
        it to a wanted one in one step where the backend offers it (update_key_alias), instead of adding the spec's
        as a second alias beside it. Renamed outside Kubernetes (status recorded another name) it is a drift,
        undone and said so. Backends without a primary alias to rename (AWS, Cloud KMS) refuse: aliases are
        then added and removed as before."""
        desired = self._desired
        if not key.alias or (not desired.aliases and desired.adopt is not None):
            return key
        wanted = desired.wanted_aliases()
        # spec.adopt's alias stays too: renamed away, it would name no key when the object is applied again.
        if key.alias in wanted or (desired.adopt is not None and key.alias == desired.adopt.alias):
            return key
        target = _rename_target(desired.primary_alias(), wanted, set(key.aliases))
        if target is None:  # renaming onto an alias the key holds would leave that name unresolved for a moment
            self._kept_alias = (
                f"alias {key.alias} still names key {key.key_id}: it is the key's primary alias, and every alias "
                "of spec.aliases names the key already; list a new alias first in spec.aliases to rename the key to it"
            )
            return key
        await self._before_change()
        try:
            await self._backend.update_key_alias(key.key_id, target)
        except InvalidArgument as error:
            if error.reason != Reason.UNSUPPORTED_OPERATION:
                raise
            self._kept_alias = f"alias {key.alias} still names key {key.key_id}: {error.message}"
            return key
        except AlreadyExists as error:
            raise await self._refused_alias(target, error) from None
        self._made.append(_renamed(key, target, known_alias))
        return replace(key, alias=target, aliases=tuple(sorted(set(key.aliases) - {key.alias} | {target})))

    async def _converge_policy(self, key: KeyMetadata) -> None:
        """spec.policy, when set, is the key's policy: a document changed elsewhere is put back."""
        wanted = self._desired.policy
        if wanted is None or self._policy_applied:
            return
        if same_policy(await self._backend.get_key_policy(key.key_id), wanted):
            return
        await self._before_change()
        await self._backend.put_key_policy(key.key_id, wanted)
        self._made.append(Change("PolicyUpdated", f"key policy of key {key.key_id} set to spec.policy"))

    async def public_key(self, key: KeyMetadata) -> str | None:
        """The PEM public key of an asymmetric key; None for symmetric and HMAC keys."""
        if key.key_spec not in ASYMMETRIC_KEY_SPECS:
            return None
        return pem_public_key(await self._backend.get_public_key(key.key_id))

    async def _converge_tags(self, key: KeyMetadata) -> None:
        wanted = self._desired.wanted_tags()
        to_set = {name: value for name, value in wanted.items() if key.tags.get(name) != value}
        to_remove = sorted(name for name in key.tags if name not in wanted and not name.startswith(OPERATOR_TAG_PREFIX))
        if not to_set and not to_remove:
            return
        await self._before_change()
        if to_remove:
            await self._backend.untag_key(key.key_id, to_remove)
        if to_set:
            await self._backend.tag_key(key.key_id, to_set)
        summary = ", ".join([*(f"set {name}" for name in sorted(to_set)), *(f"removed {name}" for name in to_remove)])
        self._made.append(Change("TagsUpdated", f"tags of key {key.key_id}: {summary}"))

    async def schedule_deletion(self, known_key_id: str) -> list[Change]:
        """deletionPolicy Delete: schedule the deletion of the object's key(s) after the pending window."""
        desired = self._desired
        if known_key_id:
            try:
                keys = [await self._backend.describe_key(known_key_id)]
            except NotFound:
                keys = []
        else:
            keys = await self._backend.find_keys_by_tag(OWNER_UID_TAG, desired.owner.uid)
        changes = []
        for key in keys:
            if key.state in (KeyState.PENDING_DELETION, KeyState.DESTROYED):
                continue
            owner_uid = key.tags.get(OWNER_UID_TAG)
            if owner_uid and owner_uid != desired.owner.uid:
                continue  # never delete a key another object manages
            if not owner_uid:  # named only by status.keyId: spec.adopt's key, with consent, or left alone
                if not await self._is_adopt_target(key):
                    changes.append(Change("KeyNotDeleted", f"key {key.key_id} {_not_tagged_ours(key)}; left untouched"))
                    continue
                self._consent()
            scheduled = await self._backend.schedule_key_deletion(key.key_id, desired.pending_window_days)
            when = timestamp(scheduled.deletion_date) or f"in {desired.pending_window_days} days"
            changes.append(Change("DeletionScheduled", f"key {key.key_id} scheduled for deletion on {when}"))
        return changes


def _renamed(key: KeyMetadata, target: str, known_alias: str) -> Change:
    """The rename's Change: a drift undone when status recorded another name than the key had."""
    if known_alias and known_alias != key.alias:
        return Change(
            "AliasRenamed",
            f"key {key.key_id} was renamed from {known_alias} to {key.alias}; renamed to {target} as spec.aliases "
            f"says ({key.alias} no longer names it)",
            drift=True,
        )
    return Change("AliasRenamed", f"key {key.key_id} renamed from {key.alias} to {target}")


def _rename_target(primary: str, wanted: set[str], held: set[str]) -> str | None:
    """The wanted alias to rename the key to: the spec's primary one, else the first the key lacks."""
    if primary not in held:
        return primary
    return min(wanted - held, default=None)


def _former_owner(key: KeyMetadata) -> str:
    owner, uid = key.tags.get(OWNER_TAG, ""), key.tags.get(OWNER_UID_TAG)
    return f"created for KMSKey {owner} (uid {uid}), which no longer exists"


def _not_tagged_ours(key: KeyMetadata) -> str:
    return f"carries no {OWNER_UID_TAG} tag of this KMSKey and is not its spec.adopt key"


def _left_untouched(key: KeyMetadata) -> str:
    return (
        f"it is left untouched: to take it over, recreate this KMSKey with spec.adopt.keyId: {key.key_id} "
        "(only spec.adopt takes over a key)"
    )


def _rotation_mark(request: str, version: int) -> str:
    """ROTATE_TAG's value: a digest of the annotation value (any text; tag values are narrower) and
    the key version found before rotating for it."""
    return f"{hashlib.sha256(request.encode()).hexdigest()[:32]}-v{version}"


def _marked_version(mark: str, request: str) -> int | None:
    """The version recorded in ``mark`` if it is the mark of ``request``."""
    version = mark.rpartition("-v")[2]
    if not version.isdigit() or _rotation_mark(request, int(version)) != mark:
        return None
    return int(version)
