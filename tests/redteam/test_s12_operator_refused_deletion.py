"""A KMSKey whose key the backend refuses to schedule for deletion is not deleted without its key.

spec.pendingWindowDays takes 7 to 1096 (the CRD, the kubekms server); AWS KMS takes 7 to 30. A KMSKey
on an AWS backend with pendingWindowDays 60 is created and Ready (the window is used only at
deletion); on `kubectl delete` the backend refused ScheduleKeyDeletion, the handler failed
permanently, kopf removed the finalizer anyway: the object was gone, its key left ENABLED with
nobody managing it, deletionPolicy Delete ignored, and the only trace a Warning Event on an object
that no longer exists. Expected: the object stays (finalizer held) with Synced False saying why and
what to do, and once pendingWindowDays is one the backend takes, the key is scheduled and the object
goes. The window is never shortened for the backend (no key destroyed before the window asked for).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kmskey_support import cluster_with_crds

from kubekms.backend import KeyState
from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))
from operator_support import Cluster, operator_running

pytestmark = pytest.mark.e2e
PREFIX = "s12win-"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, KMSServer, str]]:
    root = tmp_path_factory.mktemp("s12-window")
    with cluster_with_crds(root) as (plane, kms):
        cluster = Cluster(plane, f"{PREFIX}{uuid.uuid4().hex[:6]}")
        backend = cluster.backend(kms, f"{PREFIX}aws", provider="aws")  # the server's AWS KMS wire
        with operator_running(plane, root, [f"{PREFIX}*"]):
            yield cluster, kms, backend


def test_a_window_the_backend_refuses_holds_the_object_until_it_is_fixed(
    setup: tuple[Cluster, KMSServer, str],
) -> None:
    cluster, kms, backend = setup
    cluster.create_key("long", {"backendRef": {"name": backend}, "pendingWindowDays": 60})
    key_id = cluster.wait_ready("long")["keyId"]
    cluster.delete_key("long")

    def refused() -> dict[str, object] | None:
        condition = cluster.condition("long", "Synced")
        return condition if condition.get("reason") == "BackendRejected" else None

    condition = wait_for(refused, 60, "the refusal in the Synced condition")
    assert "from 7 to 30, got 60" in str(condition["message"])
    assert "deletionPolicy Retain" in str(condition["message"])  # says what else the user can do
    assert cluster.key("long") is not None, "deleted although its key was not"
    assert kms.call("describe_key", key_id).state is KeyState.ENABLED

    cluster.patch_key("long", {"spec": {"pendingWindowDays": 30}})
    wait_for(lambda: cluster.key("long") is None, 90, "KMSKey long gone once its window is one AWS takes")
    key = kms.call("describe_key", key_id)
    assert key.state is KeyState.PENDING_DELETION and key.deletion_date is not None
