"""The status the operator writes: what the key looks like in the KMS, and the conditions.

Conditions follow the Kubernetes convention: ``type``, ``status`` ("True"/"False"/
"Unknown"), a CamelCase ``reason`` for machines, a ``message`` for people, the
``observedGeneration`` they were computed from, and ``lastTransitionTime`` that only
moves when ``status`` changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from kubekms.backend import KeyMetadata, KeyState

STATE_NAMES = {
    KeyState.PENDING_ACTIVATION: "PendingActivation",
    KeyState.ENABLED: "Enabled",
    KeyState.DISABLED: "Disabled",
    KeyState.PENDING_DELETION: "PendingDeletion",
    KeyState.PENDING_IMPORT: "PendingImport",
    KeyState.DESTROYED: "Destroyed",
}


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now() -> str:
    return timestamp(datetime.now(UTC))


def condition(kind: str, ok: bool | None, reason: str, message: str, generation: int | None) -> dict[str, Any]:
    status = "Unknown" if ok is None else "True" if ok else "False"
    entry: dict[str, Any] = {"type": kind, "status": status, "reason": reason, "message": message}
    if generation is not None:
        entry["observedGeneration"] = generation
    return entry


def merged_conditions(existing: Iterable[Mapping[str, Any]], updates: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """``existing`` with ``updates`` replacing entries of the same type; transition times kept when unchanged."""
    by_type = {str(entry.get("type")): dict(entry) for entry in existing}
    stamp = now()
    for update in updates:
        previous = by_type.get(update["type"])
        changed = previous is None or previous.get("status") != update["status"]
        update["lastTransitionTime"] = stamp if changed else previous.get("lastTransitionTime", stamp)  # type: ignore[union-attr]
        by_type[update["type"]] = update
    return [by_type[kind] for kind in sorted(by_type)]


def key_status(meta: KeyMetadata) -> dict[str, Any]:
    """The status fields that describe the key itself (``None`` clears a field in a merge patch)."""
    return {
        "keyId": meta.key_id,
        "keyState": STATE_NAMES.get(meta.state, meta.state.value),
        "currentVersion": meta.current_version,
        "lastRotationTime": timestamp(meta.last_rotation_at) if meta.last_rotation_at else None,
        "nextRotationTime": _next_rotation(meta),
        "deletionDate": timestamp(meta.deletion_date) if meta.deletion_date else None,
    }


def _next_rotation(meta: KeyMetadata) -> str | None:
    if not meta.rotation_enabled or meta.rotation_interval_days <= 0 or meta.state is not KeyState.ENABLED:
        return None
    since = meta.last_rotation_at or meta.created_at
    return timestamp(since + timedelta(days=meta.rotation_interval_days))


def is_usable(meta: KeyMetadata, *, want_enabled: bool) -> bool:
    """Ready: the key exists and is in the state the spec asks for."""
    wanted = KeyState.ENABLED if want_enabled else KeyState.DISABLED
    return meta.state is wanted
