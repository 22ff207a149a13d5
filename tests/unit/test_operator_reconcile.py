"""The operator's logic without kopf or a cluster: reconciling over the real keystore (provider local),
when a first attempt may skip the search for an earlier key, settings and the crash test's fault switch."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from kubekms.backend import Backend, KeyMetadata, KeyState
from kubekms.providers import BackendConfig, open_backend
from kubekms_operator.backends import BackendResolver
from kubekms_operator.faults import with_faults
from kubekms_operator.handlers import KeyHandlers
from kubekms_operator.reconcile import AliasInUse, KeyReconciler, OwnedByOther, _rotation_mark
from kubekms_operator.settings import ReencryptionSettings
from kubekms_operator.spec import InvalidSpec, parse_key


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[Backend]:
    opened = await open_backend(BackendConfig(provider="local", state_dir=tmp_path, init=True))
    yield opened
    await opened.close()


def desired(spec: dict[str, Any], *, name: str = "app", uid: str = "uid-1") -> Any:
    return parse_key(spec, namespace="ns", name=name, uid=uid, annotations={})


class CallLog:
    """The real local backend, with the name of every protocol call it served (in order)."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._backend, name)

        async def logged(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return await method(*args, **kwargs)

        return logged


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


async def test_a_first_attempt_creates_at_once_and_the_alias_guards_against_a_second_key(backend: Backend) -> None:
    """may_exist=False (no earlier attempt can have made a key): no tag search, no alias check before
    creating; if the alias turns out to be taken, the key under it is looked at then."""
    logged = CallLog(backend)
    calls = cast(Backend, logged)
    key, changes = await KeyReconciler(calls, desired({}), never_alive).find_or_create("", may_exist=False)
    assert logged.calls == ["create_key"] and [c.reason for c in changes] == ["Created"]
    assert key.tags["kubekms.io/owner-uid"] == "uid-1" and key.alias == "k8s/ns/app"

    logged.calls.clear()
    again, changes = await KeyReconciler(calls, desired({}), never_alive).find_or_create("", may_exist=False)
    assert again.key_id == key.key_id and [c.reason for c in changes] == ["Found"]  # ours, under the alias
    assert logged.calls == ["create_key", "describe_key"]
    with pytest.raises(AliasInUse, match=f"k8s/ns/app already names key {key.key_id}, created for KMSKey ns/app"):
        await KeyReconciler(calls, desired({}, uid="uid-2"), never_alive).find_or_create("", may_exist=False)
    with pytest.raises(AliasInUse, match=f"k8s/ns/app already names key {key.key_id}"):  # an extra alias: checked first
        spec = desired({"aliases": ["ns/free", "k8s/ns/app"]}, uid="uid-3")
        await KeyReconciler(calls, spec, never_alive).find_or_create("", may_exist=False)
    assert (await backend.list_keys()).total == 1, "nothing created beside the taken alias"

    logged.calls.clear()
    await KeyReconciler(calls, desired({}, name="other", uid="uid-4"), never_alive).find_or_create("")
    assert logged.calls == ["find_keys_by_tag", "describe_key", "create_key"], "a later attempt searches first"


def test_only_the_first_attempt_on_an_object_created_after_the_start_skips_the_search() -> None:
    handlers = KeyHandlers(BackendResolver())

    def meta(uid: str, created: str) -> dict[str, str]:
        return {"uid": uid, "creationTimestamp": created}

    assert handlers._may_have_a_key(meta("a", "2026-01-01T10:00:05Z")), "the apiserver's time is unknown"
    handlers.serving_since = datetime(2026, 1, 1, 10, 0, 0, tzinfo=UTC)
    assert not handlers._may_have_a_key(meta("b", "2026-01-01T10:00:01Z"))
    assert handlers._may_have_a_key(meta("b", "2026-01-01T10:00:01Z")), "a second attempt may follow a create"
    assert handlers._may_have_a_key(meta("c", "2026-01-01T10:00:00Z")), "the same second: maybe before the start"
    assert handlers._may_have_a_key(meta("d", "2025-12-31T09:00:00Z")), "an earlier operator may have seen it"
    assert handlers._may_have_a_key(meta("e", "not a time"))


def test_reencryption_settings_come_from_the_deployment_environment_with_precise_errors() -> None:
    assert ReencryptionSettings.from_environment({}) == ReencryptionSettings()
    read = ReencryptionSettings.from_environment(
        {
            "KUBEKMS_KMS_PROVIDER_NAME": "etcd-kms",
            "KUBEKMS_REENCRYPTION_MAX_RATE": "0",
            "KUBEKMS_REENCRYPTION_INTERVAL": "5",
        }
    )
    assert (read.provider_name, read.max_rate, read.check_interval, read.adoption_timeout) == ("etcd-kms", 0, 5, 300)
    with pytest.raises(ValueError, match="KUBEKMS_REENCRYPTION_MAX_RATE must be a number, got 'fast'"):
        ReencryptionSettings.from_environment({"KUBEKMS_REENCRYPTION_MAX_RATE": "fast"})
    with pytest.raises(ValueError, match="KUBEKMS_REENCRYPTION_INTERVAL must be a positive number, got '0'"):
        ReencryptionSettings.from_environment({"KUBEKMS_REENCRYPTION_INTERVAL": "0"})
    with pytest.raises(ValueError, match="ADOPTION_TIMEOUT must be a positive number, got 'nan'"):
        ReencryptionSettings.from_environment({"KUBEKMS_REENCRYPTION_ADOPTION_TIMEOUT": "nan"})
    with pytest.raises(ValueError, match="KUBEKMS_KMS_PROVIDER_NAME must not be empty"):
        ReencryptionSettings.from_environment({"KUBEKMS_KMS_PROVIDER_NAME": ""})


def test_the_crash_fault_is_off_unless_named_and_a_wrong_name_is_refused() -> None:
    assert with_faults(open_backend, {}) is open_backend
    assert with_faults(open_backend, {"KUBEKMS_OPERATOR_FAULT": "after-create"}) is not open_backend
    with pytest.raises(ValueError, match="KUBEKMS_OPERATOR_FAULT='after-tag': the only fault is 'after-create'"):
        with_faults(open_backend, {"KUBEKMS_OPERATOR_FAULT": "after-tag"})


async def test_a_key_under_a_wanted_alias_is_never_taken_over(backend: Backend) -> None:
    """Made by someone else (or by an attempt that died before tagging it: the two look alike)."""
    foreign = await backend.create_key("k8s/ns/app", description="by hand", tags={"team": "x"})
    with pytest.raises(AliasInUse, match=rf"k8s/ns/app already names key {foreign.key_id}, which kubekms did not"):
        await KeyReconciler(backend, desired({}), never_alive).find_or_create("")
    with pytest.raises(AliasInUse, match=r"recreate this KMSKey with spec\.adopt\.keyId"):
        await KeyReconciler(backend, desired({"aliases": ["ns/free", "k8s/ns/app"]}), never_alive).find_or_create("")
    assert (await backend.list_keys()).total == 1, "nothing created beside the taken alias"
    after = await backend.describe_key(foreign.key_id)
    assert after.tags == {"team": "x"} and after.description == "by hand"


async def test_a_key_made_for_an_earlier_object_of_the_same_name_needs_adopt(backend: Backend) -> None:
    """A KMSKey restored from a backup has a new UID: its old key is not its own."""
    old, _ = await KeyReconciler(backend, desired({}, uid="old"), never_alive).find_or_create("")
    with pytest.raises(AliasInUse, match=r"created for KMSKey ns/app \(uid old\), which no longer exists"):
        await KeyReconciler(backend, desired({}, uid="new"), never_alive).find_or_create("")
    with pytest.raises(OwnedByOther, match=r"uid old.*spec\.adopt\.keyId"):  # a restored status names it
        await KeyReconciler(backend, desired({}, uid="new"), never_alive).find_or_create(old.key_id)
    with pytest.raises(AliasInUse, match="managed by KMSKey ns/app; it is left untouched: choose another alias"):
        await KeyReconciler(backend, desired({}, uid="new"), always_alive).find_or_create("")
    adopt = desired({"adopt": {"keyId": old.key_id}}, uid="new")
    key, changes = await KeyReconciler(backend, adopt, never_alive).find_or_create(old.key_id)
    assert key.key_id == old.key_id and [c.reason for c in changes] == ["Adopted"]


async def test_an_alias_moved_to_another_key_is_reported_not_followed(backend: Backend) -> None:
    spec = desired({"aliases": ["ns/main", "ns/extra"]})
    reconciler = KeyReconciler(backend, spec, never_alive)
    key, _ = await reconciler.find_or_create("")
    await reconciler.converge(key, "")
    await backend.delete_alias(key.key_id, "ns/extra")
    other = await backend.create_key("ns/other")
    await backend.create_alias(other.key_id, "ns/extra")
    with pytest.raises(AliasInUse, match=f"ns/extra already names key {other.key_id}"):
        await KeyReconciler(backend, spec, never_alive).converge(await backend.describe_key(key.key_id), "")
    assert set((await backend.describe_key(other.key_id)).aliases) == {"ns/other", "ns/extra"}


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
    # The status write after the rotation was lost: the key's own tag says r1 was done.
    lost = await KeyReconciler(backend, asked, never_alive).converge(await backend.describe_key(key.key_id), "")
    assert lost.changes == [] and lost.rotate_request == "r1" and lost.key.current_version == 2
    # A mark written before a rotation call that never took effect (a crash between the two): rotated now, once.
    await backend.tag_key(key.key_id, {"kubekms.io/rotate-request": _rotation_mark("r2", 2)})
    r2 = parse_key({}, namespace="ns", name="app", uid="uid-1", annotations={"kubekms.io/rotate": "r2"})
    retried = await KeyReconciler(backend, r2, never_alive).converge(await backend.describe_key(key.key_id), "r1")
    assert retried.key.current_version == 3 and [c.reason for c in retried.changes] == ["Rotated"]
    again = await KeyReconciler(backend, r2, never_alive).converge(retried.key, "r1")
    assert again.changes == [] and again.key.current_version == 3


async def test_adoption_respects_living_owners_only(backend: Backend) -> None:
    owned = await backend.create_key("legacy", tags={"kubekms.io/owner-uid": "other", "kubekms.io/owner": "ns/old"})
    adopt = desired({"adopt": {"alias": "legacy"}}, name="new", uid="uid-2")
    with pytest.raises(OwnedByOther, match="ns/old"):
        await KeyReconciler(backend, adopt, always_alive).find_or_create("")
    key, changes = await KeyReconciler(backend, adopt, never_alive).find_or_create("")
    assert key.key_id == owned.key_id and [c.reason for c in changes] == ["Adopted"]
    converged = await KeyReconciler(backend, adopt, never_alive).converge(key, "")
    assert converged.key.tags["kubekms.io/owner-uid"] == "uid-2"


async def test_delete_policy_schedules_deletion_with_the_window(backend: Backend) -> None:
    spec = desired({"pendingWindowDays": 8})
    key, _ = await KeyReconciler(backend, spec, never_alive).find_or_create("")
    changes = await KeyReconciler(backend, spec, never_alive).schedule_deletion(
        ""
    )  # found by tag: status never written
    assert [c.reason for c in changes] == ["DeletionScheduled"]
    assert (await backend.describe_key(key.key_id)).state == KeyState.PENDING_DELETION


def test_a_spec_the_schema_could_not_check_is_refused_precisely() -> None:
    with pytest.raises(InvalidSpec, match=r"spec\.tags"):
        desired({"tags": {"kubekms.io/owner": "me"}})
    with pytest.raises(InvalidSpec, match="exactly one of keyId and alias"):
        desired({"adopt": {"keyId": "a", "alias": "b"}})
    with pytest.raises(InvalidSpec, match=r"spec\.enabled must be a bool"):
        desired({"enabled": "yes"})


async def test_a_client_in_use_is_closed_only_after_its_last_borrower(tmp_path: Path) -> None:
    opened: list[Backend] = []

    async def opener(config: BackendConfig) -> Backend:  # the resolver's config is for the real server
        backend = await open_backend(BackendConfig(provider="local", state_dir=tmp_path, init=True))
        opened.append(backend)
        return backend

    resolver = BackendResolver(opener)
    obj: dict[str, Any] = {"metadata": {"name": "b", "uid": "u1", "generation": 1}, "spec": {"provider": "aws"}}
    async with resolver.lease(obj) as first:
        await resolver.forget("u1")  # e.g. the health check saw refused credentials
        await first.list_keys()  # still open for the handler using it
        async with resolver.lease(obj) as second:
            assert second is not first
    with pytest.raises(sqlite3.ProgrammingError):
        await first.list_keys()  # closed once its last borrower was done
    async with resolver.lease(obj) as again:
        assert again is second
        async with resolver.lease({**obj, "metadata": {**obj["metadata"], "generation": 2}}) as newer:
            assert newer is not second
        await again.list_keys()  # a spec change does not close a client in use either
    with pytest.raises(sqlite3.ProgrammingError):
        await second.list_keys()
    await resolver.close()
    assert len(opened) == 3
