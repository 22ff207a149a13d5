"""status.keyId alone never makes a key the KMSKey's (whoever may write kmskeys/status could name any key):
the owner-uid tag or spec.adopt does. Over the real keystore (provider local), no cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kubekms.backend import Backend, KeyState
from kubekms.providers import BackendConfig, open_backend
from kubekms_operator.reconcile import KeyReconciler, OwnedByOther
from kubekms_operator.spec import OWNER_UID_TAG, DesiredKey, parse_key


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[Backend]:
    opened = await open_backend(BackendConfig(provider="local", state_dir=tmp_path, init=True))
    yield opened
    await opened.close()


async def never_alive(reference: str, uid: str) -> bool:
    return False


def desired(spec: dict[str, Any]) -> DesiredKey:
    return parse_key(spec, namespace="ns", name="app", uid="uid-1", annotations={})


async def test_an_untagged_key_named_only_by_status_is_neither_managed_nor_deleted(backend: Backend) -> None:
    other = await backend.create_key("team/cluster-secrets", description="made with the CLI")
    reconciler = KeyReconciler(backend, desired({"enabled": False}), never_alive)
    with pytest.raises(OwnedByOther, match=f"key {other.key_id} carries no {OWNER_UID_TAG} tag of this KMSKey"):
        await reconciler.find_or_create(other.key_id)
    changes = await KeyReconciler(backend, desired({}), never_alive).schedule_deletion(other.key_id)
    assert [change.reason for change in changes] == ["KeyNotDeleted"]
    key = await backend.describe_key(other.key_id)
    assert key.state is KeyState.ENABLED and OWNER_UID_TAG not in key.tags


@pytest.mark.parametrize("by", ["key_id", "alias"])
async def test_the_adopted_key_in_status_is_the_objects_before_its_tag(backend: Backend, by: str) -> None:
    other = await backend.create_key("team/legacy", description="made with the CLI")
    adopt = {"keyId": other.key_id} if by == "key_id" else {"alias": "team/legacy"}
    key, _ = await KeyReconciler(backend, desired({"adopt": adopt}), never_alive).find_or_create(other.key_id)
    assert key.key_id == other.key_id
    changes = await KeyReconciler(backend, desired({"adopt": adopt}), never_alive).schedule_deletion(other.key_id)
    assert [change.reason for change in changes] == ["DeletionScheduled"]


async def test_a_key_tagged_with_the_objects_uid_is_deleted(backend: Backend) -> None:
    own = await backend.create_key("k8s/ns/app", tags={OWNER_UID_TAG: "uid-1"})
    changes = await KeyReconciler(backend, desired({}), never_alive).schedule_deletion(own.key_id)
    assert [change.reason for change in changes] == ["DeletionScheduled"]
    assert (await backend.describe_key(own.key_id)).state is KeyState.PENDING_DELETION


def refuse() -> None:
    raise PermissionError("no consent")


async def test_consent_is_asked_at_the_take_over_only(backend: Backend) -> None:
    untagged = await backend.create_key("team/untagged")
    taker = KeyReconciler(backend, desired({"adopt": {"keyId": untagged.key_id}}), never_alive, consent=refuse)
    with pytest.raises(PermissionError):
        await taker.find_or_create("")
    assert OWNER_UID_TAG not in (await backend.describe_key(untagged.key_id)).tags
    own = await backend.create_key("team/adopted", tags={OWNER_UID_TAG: "uid-1"})  # taken over before
    spec = desired({"adopt": {"keyId": own.key_id}})
    key, _ = await KeyReconciler(backend, spec, never_alive, consent=refuse).find_or_create(own.key_id)
    assert key.key_id == own.key_id
    changes = await KeyReconciler(backend, spec, never_alive, consent=refuse).schedule_deletion(own.key_id)
    assert [change.reason for change in changes] == ["DeletionScheduled"]


class OtherProcessTagsLast:
    """Fake for a fault a single operator cannot cause (its take-overs of one key are serialised): another
    operator process's take-over writes its owner tag right after ours."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    async def tag_key(self, key_id: str, tags: dict[str, str]) -> None:
        await self._backend.tag_key(key_id, tags)
        await self._backend.tag_key(key_id, {OWNER_UID_TAG: "uid-other", "kubekms.io/owner": "other/app"})


async def test_a_take_over_lost_to_another_process_changes_nothing_and_records_nothing(backend: Backend) -> None:
    shared = await backend.create_key("team/shared", description="as it was")
    recorded = []

    async def record(key: Any) -> None:
        recorded.append(key.key_id)

    async def alive(reference: str, uid: str) -> bool:
        return uid == "uid-other"

    spec = desired({"adopt": {"keyId": shared.key_id}, "description": "mine", "enabled": False})
    reconciler = KeyReconciler(OtherProcessTagsLast(backend), spec, alive, record)  # type: ignore[arg-type]
    with pytest.raises(OwnedByOther, match="managed by KMSKey other/app"):
        await reconciler.find_or_create("")
    key = await backend.describe_key(shared.key_id)
    assert (key.description, key.state, key.tags[OWNER_UID_TAG]) == ("as it was", KeyState.ENABLED, "uid-other")
    assert recorded == [] and reconciler.unrecorded is None and reconciler.made == []
