"""Status of KMSKey and KMSBackend objects as the handlers write it: conditions with reasons, and
a key's facts from one describe.

Conditions follow the Kubernetes convention: ``type``, ``status`` ("True"/"False"), a CamelCase
``reason``, a human ``message``, the ``observedGeneration`` they describe and a
``lastTransitionTime`` that only moves when ``status`` changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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


def timestamp(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def now() -> str:
    return timestamp(datetime.now(UTC)) or ""


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str


def merge_conditions(
    current: Sequence[Mapping[str, Any]] | None, updates: Sequence[Condition], generation: int | None
) -> list[dict[str, Any]]:
    """The full conditions list (a merge patch replaces lists): lastTransitionTime moves only on a change."""
    merged = {str(c.get("type")): dict(c) for c in current or [] if c.get("type")}
    for update in updates:
        value = "True" if update.status else "False"
        previous = merged.get(update.type, {})
        merged[update.type] = {
            "type": update.type,
            "status": value,
            "reason": update.reason,
            "message": update.message,
            "observedGeneration": generation,
            "lastTransitionTime": previous.get("lastTransitionTime") if previous.get("status") == value else now(),
        }
    return list(merged.values())


def key_facts(key: KeyMetadata) -> dict[str, Any]:
    """What ``status`` says about a key, from one describe (None clears a field in a merge patch)."""
    next_rotation = None
    if key.rotation_enabled and key.rotation_interval_days and key.state == KeyState.ENABLED:
        since = key.last_rotation_at or key.created_at
        next_rotation = since + timedelta(days=key.rotation_interval_days)
    return {
        "keyId": key.key_id,
        "alias": key.alias or None,
        "keyState": STATE_NAMES.get(key.state, key.state.value),
        "currentVersion": key.current_version,
        "lastRotationTime": timestamp(key.last_rotation_at),
        "nextRotationTime": timestamp(next_rotation),
        "deletionDate": timestamp(key.deletion_date),
    }


def is_true(conditions: Sequence[Mapping[str, Any]] | None, type_: str) -> bool | None:
    """True/False for a condition that is there, None if it is missing or Unknown."""
    for condition in conditions or []:
        if condition.get("type") == type_ and condition.get("status") in ("True", "False"):
            return bool(condition.get("status") == "True")
    return None
