"""The changes a key page offers, each named by the v1.0 operation a principal must be granted.

No action reads or returns key material, and there is no encrypt, decrypt or data-key action:
the console manages keys, it does not use them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kubekms.backend import Backend, KeyState
from kubekms.errors import InvalidArgument, Reason
from kubekms.keystore.rules import PENDING_DAYS, ROTATION_DAYS, check_not_reserved_alias
from kubekms.server.console.forms import Form
from kubekms.server.console.versions import set_version
from kubekms.server.gcp_grpc import version_state_permission

MANAGEABLE = frozenset({KeyState.ENABLED, KeyState.DISABLED})
MAX_TAG_CHARS = 1024  # the keystore's own limits (128/255) refuse long tags with their precise message


@dataclass(frozen=True)
class KeyAction:
    operation: str
    states: frozenset[KeyState]  # the key states in which the page offers it
    run: Callable[[Backend, str, Form], Awaitable[str]]  # returns the notice shown after it
    tag_keys: Callable[[Form], list[str]] | None = None  # a tag change: the tag keys it sets or removes


async def _enable(backend: Backend, key: str, form: Form) -> str:
    await backend.enable_key(key)
    return "The key is enabled."


async def _disable(backend: Backend, key: str, form: Form) -> str:
    await backend.disable_key(key)
    return "The key is disabled."


async def _schedule_deletion(backend: Backend, key: str, form: Form) -> str:
    days = form.integer("pending_days", PENDING_DAYS)
    typed = form.text("confirm", max_chars=300).strip()
    meta = await backend.describe_key(key)
    if not typed or typed not in {meta.key_id, meta.alias}:
        raise InvalidArgument(
            "type the key's alias (or its id) to confirm the deletion", reason=Reason.DELETION_NOT_CONFIRMED
        )
    await backend.schedule_key_deletion(key, days)
    return f"The key is scheduled for deletion in {days} days."


async def _cancel_deletion(backend: Backend, key: str, form: Form) -> str:
    await backend.cancel_key_deletion(key)
    return "The deletion is cancelled; the key is disabled until you enable it."


async def _rotate(backend: Backend, key: str, form: Form) -> str:
    meta = await backend.rotate_key(key)
    return f"The key is rotated: version {meta.current_version} is now primary."


async def _rotation_on(backend: Backend, key: str, form: Form) -> str:
    days = form.integer("rotation_interval", ROTATION_DAYS)
    await backend.set_rotation(key, enabled=True, interval_days=days)
    return f"Automatic rotation is on, every {days} days."


async def _rotation_off(backend: Backend, key: str, form: Form) -> str:
    await backend.set_rotation(key, enabled=False)
    return "Automatic rotation is off."


async def _rotation_interval(backend: Backend, key: str, form: Form) -> str:
    days = form.integer("rotation_interval", ROTATION_DAYS)
    status = await backend.get_rotation_status(key)
    await backend.set_rotation(key, enabled=status.enabled, interval_days=days)
    return f"The rotation interval is {days} days."


async def _describe(backend: Backend, key: str, form: Form) -> str:
    await backend.update_description(key, form.text("description", max_chars=1024))
    return "The description is saved."


async def _add_alias(backend: Backend, key: str, form: Form) -> str:
    alias = check_not_reserved_alias(form.text("alias", max_chars=300, required=True).strip())
    await backend.create_alias(key, alias)
    return f"Alias {alias} added."


async def _remove_alias(backend: Backend, key: str, form: Form) -> str:
    alias = form.text("alias", max_chars=300, required=True)
    await backend.delete_alias(key, alias)
    return f"Alias {alias} removed."


def _tag_keys(form: Form) -> list[str]:
    return [form.text("tag_key", max_chars=MAX_TAG_CHARS, required=True)]


async def _add_tag(backend: Backend, key: str, form: Form) -> str:
    [tag_key] = _tag_keys(form)
    await backend.tag_key(key, {tag_key: form.text("tag_value", max_chars=MAX_TAG_CHARS)})
    return f"Tag {tag_key} saved."


async def _remove_tag(backend: Backend, key: str, form: Form) -> str:
    [tag_key] = _tag_keys(form)
    await backend.untag_key(key, [tag_key])
    return f"Tag {tag_key} removed."


async def _enable_version(backend: Backend, key: str, form: Form) -> str:
    return await set_version(backend, key, form, enabled=True)


async def _disable_version(backend: Backend, key: str, form: Form) -> str:
    return await set_version(backend, key, form, enabled=False)


ACTIONS: dict[str, KeyAction] = {
    "enable": KeyAction("enable-key", frozenset({KeyState.DISABLED}), _enable),
    "disable": KeyAction("disable-key", frozenset({KeyState.ENABLED}), _disable),
    "schedule-deletion": KeyAction("schedule-key-deletion", MANAGEABLE, _schedule_deletion),
    "cancel-deletion": KeyAction("cancel-key-deletion", frozenset({KeyState.PENDING_DELETION}), _cancel_deletion),
    "rotate": KeyAction("rotate-on-demand", frozenset({KeyState.ENABLED}), _rotate),
    "rotation-on": KeyAction("enable-key-rotation", MANAGEABLE, _rotation_on),
    "rotation-off": KeyAction("disable-key-rotation", MANAGEABLE, _rotation_off),
    "rotation-interval": KeyAction("update-key-rotation-interval", MANAGEABLE, _rotation_interval),
    "description": KeyAction("update-key-description", MANAGEABLE, _describe),
    "add-alias": KeyAction("create-alias", MANAGEABLE, _add_alias),
    "remove-alias": KeyAction("delete-alias", MANAGEABLE, _remove_alias),
    "add-tag": KeyAction("create-key-tag", MANAGEABLE, _add_tag, _tag_keys),
    "remove-tag": KeyAction("delete-key-tag", MANAGEABLE, _remove_tag, _tag_keys),
    "enable-version": KeyAction(version_state_permission(True), MANAGEABLE, _enable_version),
    "disable-version": KeyAction(version_state_permission(False), MANAGEABLE, _disable_version),
}
