"""Operator failover: two replicas elect one reconciler with a Lease; the standby takes over when it dies.

Both operators are real processes against a real kube-apiserver and a real kubekms server; the
leader is killed with SIGKILL while 100 KMSKeys are being reconciled.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from kubernetes import client
from operator_support import Cluster, start_operator

from kubekms.devenv.controlplane import ControlPlane
from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import ManagedProcess, wait_for
from kubekms.providers import open_backend

pytestmark = pytest.mark.e2e
NAMESPACE_PREFIX = "fo-"
_KEYS = 100
_LEASE = ("--lease-duration", "4", "--renew-deadline", "3", "--retry-period", "0.5")
_OWNER_UID_TAG = "kubekms.io/owner-uid"


def _holder(cluster: Cluster) -> str:
    lease = client.CoordinationV1Api(cluster.api).read_namespaced_lease("kubekms-operator", cluster.namespace)
    return str(lease.spec.holder_identity or "")


def _operator(plane: ControlPlane, cluster: Cluster, tmp_path: Path, name: str) -> ManagedProcess:
    election = ("--leader-elect", "--leader-election-namespace", cluster.namespace, *_LEASE)
    return start_operator(plane, tmp_path, [cluster.namespace], env={"POD_NAME": name}, args=election)


def _ready_conditions(cluster: Cluster) -> dict[str, tuple[str, str]]:
    """Each KMSKey's Ready condition as (status, reason)."""
    listed = cluster.objects.list_namespaced_custom_object("kubekms.io", "v1alpha1", cluster.namespace, "kmskeys")
    return {
        item["metadata"]["name"]: (condition["status"], condition.get("reason", ""))
        for item in listed["items"]
        for condition in (item.get("status") or {}).get("conditions") or []
        if condition["type"] == "Ready"
    }


def _ready(cluster: Cluster) -> set[str]:
    return {name for name, (status, _) in _ready_conditions(cluster).items() if status == "True"}


# A killed leader is a crash. On Huawei's v1.0 wire a crash between create-key (which sets the alias)
# and its tag call would leave an aliased, untagged key that the next reconciler must refuse as foreign
# (AliasInUse); our server takes the owner tags with create-key, so every KMSKey must end Ready.


def _settled(cluster: Cluster) -> dict[str, tuple[str, str]] | None:
    conditions = _ready_conditions(cluster)
    if len(conditions) == _KEYS and all(status == "True" for status, _ in conditions.values()):
        return conditions
    stuck = {name: reason for name, (status, reason) in conditions.items() if reason == "AliasInUse"}
    assert not stuck, f"KMSKeys refused their own key after the handover: {stuck}"
    return None


def _backend_keys(kms: KMSServer, uids: list[str]) -> tuple[int, list[int]]:
    """Keys in the server's project, and how many keys each UID tags."""

    async def count() -> tuple[int, list[int]]:
        backend = await open_backend(kms.backend_config())
        try:
            total = (await backend.list_keys(limit=1)).total
            return total, [len(await backend.find_keys_by_tag(_OWNER_UID_TAG, uid)) for uid in uids]
        finally:
            await backend.close()

    return asyncio.run(count())


def test_the_standby_takes_over_from_a_killed_leader_without_a_duplicate_key(
    plane: ControlPlane, kms: KMSServer, cluster: Cluster, tmp_path: Path
) -> None:
    backend = cluster.backend(kms, cluster.namespace)
    first = _operator(plane, cluster, tmp_path, "op-a")
    second: ManagedProcess | None = None
    try:
        wait_for(lambda: _holder(cluster).startswith("op-a_"), 30, "op-a holding the lease")
        second = _operator(plane, cluster, tmp_path, "op-b")  # alive (liveness answers), standing by
        names = [f"key-{i:03d}" for i in range(_KEYS)]
        creating = threading.Thread(
            target=lambda: [cluster.create_key(n, {"backendRef": {"name": backend}}) for n in names], daemon=True
        )
        creating.start()
        before = wait_for(lambda: len(ready) if 10 <= len(ready := _ready(cluster)) < _KEYS else 0, 120,
                          "the first KMSKeys Ready under op-a")  # fmt: skip
        assert second.log_path.read_text().count("leading: starting the operator") == 0  # a standby reconciles nothing
        first.kill()
        killed = time.monotonic()
        wait_for(lambda: _holder(cluster).startswith("op-b_"), 30, "op-b taking the lease")
        lease_taken = time.monotonic() - killed
        at_kill = _ready(cluster)
        wait_for(lambda: len(_ready(cluster) - at_kill) > 0 or len(at_kill) == _KEYS, 60, "op-b reconciling")
        reconciling = time.monotonic() - killed
        creating.join(60)
        conditions = wait_for(lambda: _settled(cluster), 180, f"all {_KEYS} KMSKeys Ready")
        settled = time.monotonic() - killed
    finally:
        first.kill()
        if second is not None:
            second.stop()
    assert all(status == "True" for status, _ in conditions.values())
    keys = [cluster.key(name) for name in names]
    uids = [key["metadata"]["uid"] for key in keys if key]
    assert len({key["status"]["keyId"] for key in keys if key}) == _KEYS
    in_backend, per_owner = _backend_keys(kms, uids)
    assert in_backend == _KEYS and per_owner == [1] * _KEYS  # exactly one key per KMSKey, tagged with its UID
    print(f"operator failover: leader killed with {before} of {_KEYS} Ready; lease taken after {lease_taken:.2f}s, "
          f"reconciling after {reconciling:.2f}s, all Ready {settled:.2f}s after the kill (lease 4s)")  # fmt: skip


def test_a_stopped_leader_hands_over_at_once_and_one_that_sees_another_holder_exits(
    plane: ControlPlane, kms: KMSServer, cluster: Cluster, tmp_path: Path
) -> None:
    first = _operator(plane, cluster, tmp_path, "op-a")
    second: ManagedProcess | None = None
    try:
        wait_for(lambda: _holder(cluster).startswith("op-a_"), 30, "op-a holding the lease")
        second = _operator(plane, cluster, tmp_path, "op-b")
        first.stop()  # SIGTERM: kopf stops, then the lease is given up
        stopped = time.monotonic()
        wait_for(lambda: _holder(cluster).startswith("op-b_"), 30, "op-b taking the released lease")
        assert time.monotonic() - stopped < 4  # before the 4 s lease would have expired: it was released
        leases = client.CoordinationV1Api(cluster.api)
        lease = leases.read_namespaced_lease("kubekms-operator", cluster.namespace)
        lease.spec.holder_identity = "intruder"  # as if a partition had let another replica take it
        leases.replace_namespaced_lease("kubekms-operator", cluster.namespace, lease)
        running = second
        wait_for(lambda: not running.running, 30, "op-b exiting when it sees another holder")
        assert second.process is not None and second.process.returncode == 3
    finally:
        first.kill()
        if second is not None:
            second.kill()
