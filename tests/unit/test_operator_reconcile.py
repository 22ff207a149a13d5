"""The operator's reconcile logic without kopf or a cluster, over the real keystore (provider local)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from kubekms.backend import Backend, KeyMetadata, KeyState
from kubekms.providers import BackendConfig, open_backend
from kubekms_operator.reconcile import KeyReconciler, OwnedByOther
from kubekms_operator.spec import InvalidSpec, parse_key


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[Backend]:
    opened = await open_backend(BackendConfig(provider="local", state_dir=tmp_path, init=True))
    yield opened
    await opened.close()


def desired(spec: dict[str, Any], *, name: str = "app", uid: str = "uid-1") -> Any:
    return parse_key(spec, namespace="ns", name=name, uid=uid, annotations={})


async def never_alive(reference: str, uid: str) -> bool:
    return False


async def always_alive(reference: str, uid: str) -> bool:
    return True


async def test_create_is_idempotent_through_the_owner_tag(backend: Backend) -> None:
    recorded: list[str] = []

    async def record(key: KeyMetadata) -> None:
        recorded.append(key.key_id)

    first, changes = await KeyReconciler(backend, desired({}), never_alive, record).find_or_create("")
    assert [c.reason for c in changes] == ["Created"]
    assert first.tags["kubekms.io/owner-uid"] == "uid-1" and first.alias == "k8s/ns/app"
    again, changes = await KeyReconciler(backend, desired({}), never_alive, record).find_or_create("")
    assert again.key_id == first.key_id and [c.reason for c in changes] == ["Found"]
    assert len(await backend.find_keys_by_tag("kubekms.io/owner-uid", "uid-1")) == 1


async def test_an_untagged_key_under_our_alias_is_taken_over(backend: Backend) -> None:
    """An attempt that died between create and tag left a key with the alias and no tags."""
    orphan = await backend.create_key("k8s/ns/app")
    key, changes = await KeyReconciler(backend, desired({}), never_alive).find_or_create("")
    assert key.key_id == orphan.key_id and [c.reason for c in changes] == ["Found"]


async def test_converge_follows_the_spec_and_records_before_the_first_change(backend: Backend) -> None:
    recorded: list[str] = []

    async def record(key: KeyMetadata) -> None:
        recorded.append(key.key_id)

    spec = {
        "enabled": False,
        "description": "d",
        "aliases": ["ns/a", "ns/b"],
        "tags": {"team": "x"},
        "rotation": {"enabled": True, "periodDays": 90},
    }
    reconciler = KeyReconciler(backend, desired(spec), never_alive, record)
    key, _ = await reconciler.find_or_create("")
    assert recorded == []
    converged = await reconciler.converge(key, "")
    assert recorded == [key.key_id]
    reasons = {c.reason for c in converged.changes}
    assert {"AliasAdded", "RotationUpdated", "Disabled"} <= reasons
    final = await backend.describe_key(key.key_id)
    assert final.state == KeyState.DISABLED and set(final.aliases) == {"ns/a", "ns/b"}
    assert final.rotation_enabled and final.rotation_interval_days == 90 and final.tags["team"] == "x"
    assert (await KeyReconciler(backend, desired(spec), never_alive).converge(final, "")).changes == []


async def test_rotation_runs_once_per_annotation_value(backend: Backend) -> None:
    spec = desired({})
    key, _ = await KeyReconciler(backend, spec, never_alive).find_or_create("")
    asked = parse_key({}, namespace="ns", name="app", uid="uid-1", annotations={"kubekms.io/rotate": "r1"})
    done = await KeyReconciler(backend, asked, never_alive).converge(key, "")
    assert done.rotate_request == "r1" and done.key.current_version == 2
    again = await KeyReconciler(backend, asked, never_alive).converge(done.key, "r1")
    assert again.changes == [] and again.key.current_version == 2


async def test_adoption_respects_living_owners_only(backend: Backend) -> None:
    owned = await backend.create_key("legacy", tags={"kubekms.io/owner-uid": "other", "kubekms.io/owner": "ns/old"})
    adopt = desired({"adopt": {"alias": "legacy"}}, name="new", uid="uid-2")
    with pytest.raises(OwnedByOther, match="ns/old"):
        await KeyReconciler(backend, adopt, always_alive).find_or_create("")
    key, changes = await KeyReconciler(backend, adopt, never_alive).find_or_create("")
    assert key.key_id == owned.key_id and [c.reason for c in changes] == ["Adopted"]
    converged = await KeyReconciler(backend, adopt, never_alive).converge(key, "")
    assert converged.key.tags["kubekms.io/owner-uid"] == "uid-2"


async def test_release_schedules_deletion_with_the_window(backend: Backend) -> None:
    spec = desired({"pendingWindowDays": 8})
    key, _ = await KeyReconciler(backend, spec, never_alive).find_or_create("")
    changes = await KeyReconciler(backend, spec, never_alive).release("")  # found by tag: status never written
    assert [c.reason for c in changes] == ["DeletionScheduled"]
    assert (await backend.describe_key(key.key_id)).state == KeyState.PENDING_DELETION


def test_a_spec_the_schema_could_not_check_is_refused_precisely() -> None:
    with pytest.raises(InvalidSpec, match=r"spec\.tags"):
        desired({"tags": {"kubekms.io/owner": "me"}})
    with pytest.raises(InvalidSpec, match="exactly one of keyId and alias"):
        desired({"adopt": {"keyId": "a", "alias": "b"}})
    with pytest.raises(InvalidSpec, match=r"spec\.enabled must be a bool"):
        desired({"enabled": "yes"})
