"""The operator never takes over, changes or deletes a key it did not create (issue 12).

Every test reads the backend afterwards through the real kubekms server (descriptions, tags,
aliases, versions, deletion dates), not only the KMSKey's status. The operator is a real
subprocess serving ``own-*`` with a 2 s drift interval, so out-of-band changes are seen quickly.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from operator_support import GROUP, VERSION, Cluster, operator_running

from kubekms.backend import KeyMetadata, KeyState
from kubekms.devenv.controlplane import ControlPlane
from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import ManagedProcess, wait_for
from kubekms.keystore.store import Keystore

pytestmark = pytest.mark.e2e
NAMESPACE_PREFIX = "own-"
OWNER_UID = "kubekms.io/owner-uid"


@pytest.fixture(scope="module")
def operator(plane: ControlPlane, kms: KMSServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    with operator_running(plane, tmp_path_factory.mktemp("operator"), [f"{NAMESPACE_PREFIX}*"], drift=2) as process:
        yield process


@pytest.fixture
def backend(cluster: Cluster, kms: KMSServer, operator: ManagedProcess) -> str:
    return cluster.backend(kms, f"own-{uuid.uuid4().hex[:8]}", adoption=(cluster.namespace,))


def synced_false(cluster: Cluster, name: str, reason: str, timeout: float = 60) -> dict[str, Any]:
    def reported() -> dict[str, Any] | None:
        synced = cluster.condition(name, "Synced")
        return synced if synced.get("status") == "False" and synced.get("reason") == reason else None

    return wait_for(reported, timeout, f"KMSKey {name} Synced False {reason}")


def assert_untouched(kms: KMSServer, before: KeyMetadata) -> None:
    after = kms.call("describe_key", before.key_id)
    assert (after.description, dict(after.tags), set(after.aliases)) == (
        before.description,
        dict(before.tags),
        set(before.aliases),
    )
    assert (after.state, after.deletion_date, after.current_version) == (before.state, None, before.current_version)


def delete_and_wait(cluster: Cluster, name: str) -> None:
    cluster.delete_key(name)
    wait_for(lambda: cluster.key(name) is None, 30, f"KMSKey {name} to be gone")


def destroy_out_of_band(kms: KMSServer, key_id: str) -> None:
    """Schedule the key's deletion through the server and let the pending window end.

    Fault injection: a window lasts at least 7 days, so the server's own keystore code runs its
    maintenance pass here, on the server's database (SQLite, shared with the running server),
    with a clock 60 days ahead. The operator may cancel the deletion in between (drift
    correction of its own key): then it is scheduled again.
    """
    store = Keystore(kms.state_dir / "keystore" / kms.project_id, clock=lambda: time.time() + 60 * 86400)

    def destroyed() -> bool:
        if kms.call("describe_key", key_id).state == KeyState.ENABLED:
            kms.call("schedule_key_deletion", key_id, 7)
        store.run_due_work()
        return bool(kms.call("describe_key", key_id).state == KeyState.DESTROYED)

    try:
        wait_for(destroyed, 30, f"key {key_id} destroyed")
    finally:
        store.close()


def test_a_foreign_key_under_the_wanted_alias_is_never_touched(cluster: Cluster, kms: KMSServer, backend: str) -> None:
    alias = f"{cluster.namespace}/shared"
    foreign = kms.call("create_key", alias, description="made with the CLI", tags={"team": "other"})
    spec = {"backendRef": {"name": backend}, "aliases": [alias], "description": "mine", "tags": {"team": "mine"}}
    cluster.create_key("app", spec)
    synced = synced_false(cluster, "app", "AliasInUse")
    assert foreign.key_id in synced["message"] and "which kubekms did not create" in synced["message"]
    assert f"recreate this KMSKey with spec.adopt.keyId: {foreign.key_id}" in synced["message"]
    assert cluster.condition("app", "Ready").get("status") == "False"
    uid = cluster.key("app")["metadata"]["uid"]
    assert kms.call("find_keys_by_tag", OWNER_UID, uid) == [], "no key made for the object either"
    assert_untouched(kms, foreign)

    delete_and_wait(cluster, "app")  # deletionPolicy Delete
    assert_untouched(kms, foreign)


def test_two_objects_asking_for_one_alias(cluster: Cluster, kms: KMSServer, backend: str) -> None:
    alias = f"{cluster.namespace}/one"
    for name in ("left", "right"):
        cluster.create_key(name, {"backendRef": {"name": backend}, "aliases": [alias]})

    def settled() -> tuple[str, str] | None:
        reasons = {name: cluster.condition(name, "Synced").get("reason") for name in ("left", "right")}
        winners = [name for name, reason in reasons.items() if reason == "Synced"]
        losers = [name for name, reason in reasons.items() if reason == "AliasInUse"]
        return (winners[0], losers[0]) if len(winners) == 1 and len(losers) == 1 else None

    winner, loser = wait_for(settled, 60, "one KMSKey Synced, the other AliasInUse")
    key_id = cluster.status(winner)["keyId"]
    message = cluster.condition(loser, "Synced")["message"]
    assert key_id in message and f"managed by KMSKey {cluster.namespace}/{winner}" in message
    key = kms.call("describe_key", alias)
    assert key.key_id == key_id and key.tags[OWNER_UID] == cluster.key(winner)["metadata"]["uid"]
    assert kms.call("find_keys_by_tag", OWNER_UID, cluster.key(loser)["metadata"]["uid"]) == []

    delete_and_wait(cluster, loser)
    assert_untouched(kms, key)


def test_an_alias_moved_out_of_band_is_reported_not_followed(cluster: Cluster, kms: KMSServer, backend: str) -> None:
    main, extra = f"{cluster.namespace}/main", f"{cluster.namespace}/extra"
    cluster.create_key("moved", {"backendRef": {"name": backend}, "aliases": [main, extra]})
    key_id = cluster.wait_ready("moved")["keyId"]
    other = kms.call("create_key", f"{cluster.namespace}/other", description="someone else's")

    def moved() -> bool:
        # The drift timer (2 s) puts a deleted alias back: if it runs between the delete and the create, the
        # create is refused (AlreadyExists) and the move is made again.
        if extra in kms.call("describe_key", key_id).aliases:
            kms.call("delete_alias", key_id, extra)
        kms.call("create_alias", other.key_id, extra)
        return True

    wait_for(moved, 30, f"alias {extra} moved to another key out of band")
    other = kms.call("describe_key", other.key_id)

    synced = synced_false(cluster, "moved", "AliasInUse")  # seen by the drift timer
    assert f"alias {extra} already names key {other.key_id}" in synced["message"]
    assert cluster.status("moved")["keyId"] == key_id
    ours = kms.call("describe_key", key_id)
    assert set(ours.aliases) == {main} and ours.state == KeyState.ENABLED
    assert_untouched(kms, other)

    delete_and_wait(cluster, "moved")
    assert kms.call("describe_key", key_id).state == KeyState.PENDING_DELETION
    assert_untouched(kms, other)


def test_a_key_destroyed_and_remade_under_its_alias_is_not_adopted(
    cluster: Cluster, kms: KMSServer, backend: str
) -> None:
    cluster.create_key("gone", {"backendRef": {"name": backend}})
    key_id = cluster.wait_ready("gone")["keyId"]
    destroy_out_of_band(kms, key_id)
    alias = f"k8s/{cluster.namespace}/gone"
    newcomer = kms.call("create_key", alias, description="someone else's", tags={"team": "other"})

    synced = synced_false(cluster, "gone", "KeyGone")
    assert key_id in synced["message"]
    assert cluster.status("gone")["keyId"] == key_id
    assert_untouched(kms, newcomer)

    delete_and_wait(cluster, "gone")
    assert_untouched(kms, newcomer)


def test_a_restored_object_takes_its_old_key_only_by_adopt(cluster: Cluster, kms: KMSServer, backend: str) -> None:
    """A backup restore makes an object of the same name with a new UID (and no status)."""
    spec = {"backendRef": {"name": backend}, "description": "v1", "deletionPolicy": "Retain"}
    cluster.create_key("restored", spec)
    key_id = cluster.wait_ready("restored")["keyId"]
    old_uid = cluster.key("restored")["metadata"]["uid"]
    delete_and_wait(cluster, "restored")
    before = kms.call("describe_key", key_id)

    cluster.create_key("restored", {**spec, "description": "v2", "deletionPolicy": "Delete"})
    synced = synced_false(cluster, "restored", "AliasInUse")
    assert f"key {key_id}, created for KMSKey {cluster.namespace}/restored (uid {old_uid})" in synced["message"]
    assert_untouched(kms, before)
    # A restore that brings the status back too names the old key: still not taken over.
    cluster.objects.patch_namespaced_custom_object_status(
        GROUP, VERSION, cluster.namespace, "kmskeys", "restored", {"status": {"keyId": key_id}}
    )
    synced = synced_false(cluster, "restored", "OwnedByOther")  # seen by the drift timer
    assert f"(uid {old_uid}), which no longer exists" in synced["message"]
    assert f"spec.adopt.keyId: {key_id}" in synced["message"]
    assert_untouched(kms, before)

    delete_and_wait(cluster, "restored")  # deletionPolicy Delete, yet the key is not its own
    assert_untouched(kms, before)
    # spec.adopt is fixed at creation
    cluster.create_key("restored", {**spec, "description": "v2", "adopt": {"keyId": key_id}})
    assert cluster.wait_ready("restored")["keyId"] == key_id
    adopted = kms.call("describe_key", key_id)
    assert adopted.tags[OWNER_UID] == cluster.key("restored")["metadata"]["uid"] and adopted.description == "v2"


def test_refused_credentials_are_reported_without_a_crash(
    cluster: Cluster, kms: KMSServer, operator: ManagedProcess
) -> None:
    name = cluster.backend(kms, f"own-bad-{uuid.uuid4().hex[:8]}", secret_key="0" * 40)
    keys = [f"k{index}" for index in range(4)]
    started = time.monotonic()
    for key in keys:  # at once, while the KMSBackend's own health check meets the same refusal
        cluster.create_key(key, {"backendRef": {"name": name}})
    for key in keys:
        synced_false(cluster, key, "AccessDenied", timeout=20)  # the first retry comes after 5 s
    print(f"all {len(keys)} KMSKeys AccessDenied after {time.monotonic() - started:.1f}s")
    for key in keys:
        assert kms.call("find_keys_by_tag", OWNER_UID, cluster.key(key)["metadata"]["uid"]) == []
    assert "Session is closed" not in operator.log_path.read_text(errors="replace")

    secret_key = yaml.safe_load(kms.credentials_file("admin").read_text())["secret_key"]
    cluster.core.patch_namespaced_secret(
        f"{name}-credentials", cluster.namespace, {"stringData": {"secret_key": secret_key}}
    )
    for key in keys:
        key_id = cluster.wait_ready(key, timeout=90)["keyId"]
        assert kms.call("describe_key", key_id).tags[OWNER_UID] == cluster.key(key)["metadata"]["uid"]
    assert "Session is closed" not in operator.log_path.read_text(errors="replace")


def test_adoption_needs_the_backends_consent(cluster: Cluster, kms: KMSServer, operator: ManagedProcess) -> None:
    """Without spec.adoption naming the namespace, a KMSKey cannot take over a key of the KMSBackend."""
    name = cluster.backend(kms, f"own-closed-{uuid.uuid4().hex[:8]}")
    existing = kms.call("create_key", f"own/legacy-{uuid.uuid4().hex[:8]}", description="made with the CLI")
    cluster.create_key("taker", {"backendRef": {"name": name}, "adopt": {"keyId": existing.key_id}, "enabled": False})
    synced = synced_false(cluster, "taker", "AdoptionNotAllowed")
    assert f"KMSBackend {name} does not let KMSKeys of namespace {cluster.namespace} adopt" in synced["message"]
    assert "spec.adoption.namespaces" in synced["message"]
    # What a status writer might add: the key named there is still not taken, nor deleted with the object.
    cluster.objects.patch_namespaced_custom_object_status(
        GROUP, VERSION, cluster.namespace, "kmskeys", "taker", {"status": {"keyId": existing.key_id}}
    )
    delete_and_wait(cluster, "taker")
    assert_untouched(kms, existing)

    cluster.objects.patch_cluster_custom_object(
        GROUP, VERSION, "kmsbackends", name, {"spec": {"adoption": {"namespaces": ["own-*"]}}}
    )
    cluster.create_key("taker", {"backendRef": {"name": name}, "adopt": {"keyId": existing.key_id}})
    assert cluster.wait_ready("taker")["keyId"] == existing.key_id


def test_a_key_taken_over_is_managed_without_consent_after(cluster: Cluster, kms: KMSServer, backend: str) -> None:
    """Consent is for the take-over: once the key carries the KMSKey's UID, removing spec.adoption (the state
    of a KMSBackend made before the field existed) stops neither changes nor deletionPolicy Delete."""
    existing = kms.call("create_key", f"own/adopted-{uuid.uuid4().hex[:8]}", description="before")
    cluster.create_key("kept", {"backendRef": {"name": backend}, "adopt": {"keyId": existing.key_id}})
    assert cluster.wait_ready("kept")["keyId"] == existing.key_id
    cluster.objects.patch_cluster_custom_object(GROUP, VERSION, "kmsbackends", backend, {"spec": {"adoption": None}})
    cluster.patch_key("kept", {"spec": {"description": "after"}})
    wait_for(lambda: kms.call("describe_key", existing.key_id).description == "after", 30, "the description applied")
    delete_and_wait(cluster, "kept")
    assert kms.call("describe_key", existing.key_id).state == KeyState.PENDING_DELETION


def both_answered(cluster: Cluster, names: tuple[str, str]) -> list[dict[str, Any]] | None:
    synced = [cluster.condition(name, "Synced") for name in names]
    return synced if all(s.get("status") in ("True", "False") for s in synced) else None


def test_two_kmskeys_adopting_one_key_at_once(cluster: Cluster, kms: KMSServer, backend: str) -> None:
    """Both may adopt; exactly one takes the key, the other is OwnedByOther with no key in its status and
    changed nothing (each wants its own description)."""
    for round_ in range(3):
        existing = kms.call("create_key", f"own/shared-{uuid.uuid4().hex[:8]}", description="made with the CLI")
        names = (f"first-{round_}", f"second-{round_}")
        for name in names:  # back to back
            spec = {"backendRef": {"name": backend}, "adopt": {"keyId": existing.key_id}, "description": name}
            cluster.create_key(name, spec)

        synced = wait_for(lambda names=names: both_answered(cluster, names), 60, "both KMSKeys Synced")
        assert sorted(s["status"] for s in synced) == ["False", "True"], synced
        winner, loser = names if synced[0]["status"] == "True" else names[::-1]
        assert cluster.condition(loser, "Synced")["reason"] == "OwnedByOther"
        assert "keyId" not in ((cluster.key(loser) or {}).get("status") or {})
        key = kms.call("describe_key", existing.key_id)
        assert key.tags[OWNER_UID] == cluster.key(winner)["metadata"]["uid"] and key.description == winner
