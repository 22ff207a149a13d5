"""A KMSKey adopting the key of a KMSKey that is being deleted takes it over once that one is gone.

Moving a key from one KMSKey to another is `kubectl delete` of the first (deletionPolicy Retain) and
`kubectl apply` of the second with spec.adopt. Applied while the first was still terminating (its
finalizers not all removed yet), the second got ``OwnedByOther`` as a permanent failure: no retry,
only the drift check (every 5 minutes by default) or a spec change looked again, so the key stayed
unmanaged for minutes after its old KMSKey was gone, the condition naming an owner that no longer
existed. Expected: a retryable condition that says the owner is being deleted, and the take-over soon
after it is gone; never a take-over while it exists.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kmskey_support import cluster_with_crds, synced

from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import wait_for
from kubekms_operator.finalizer_policy import FINALIZER
from kubekms_operator.spec import OWNER_UID_TAG

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))
from operator_support import Cluster, operator_running

pytestmark = pytest.mark.e2e
PREFIX = "s12own-"
HOLD = "s12.test/hold"  # a finalizer of the test's: keeps the old KMSKey terminating for as long as needed
TAKE_OVER = 60.0  # far below the drift interval (300 s) the take-over used to wait for


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, KMSServer, str]]:
    root = tmp_path_factory.mktemp("s12-owner")
    with cluster_with_crds(root) as (plane, kms):
        namespace = f"{PREFIX}{uuid.uuid4().hex[:6]}"
        cluster = Cluster(plane, namespace)
        backend = cluster.backend(kms, f"{PREFIX}backend", adoption=(namespace,))
        with operator_running(plane, root, [f"{PREFIX}*"]):  # drift interval 300 s
            yield cluster, kms, backend


def test_the_adopter_waits_for_a_leaving_owner_then_takes_the_key(setup: tuple[Cluster, KMSServer, str]) -> None:
    cluster, kms, backend = setup
    cluster.create_key("old", {"backendRef": {"name": backend}, "deletionPolicy": "Retain"})
    key_id = cluster.wait_ready("old")["keyId"]
    old_uid = cluster.key("old")["metadata"]["uid"]  # type: ignore[index]
    cluster.patch_key("old", {"metadata": {"finalizers": [FINALIZER, HOLD]}})
    cluster.delete_key("old")
    wait_for(lambda: (cluster.key("old") or {})["metadata"]["finalizers"] == [HOLD], 60, "the operator's finalizer off")
    cluster.create_key("new", {"backendRef": {"name": backend}, "adopt": {"keyId": key_id}})
    waiting = synced(cluster, "new")
    assert waiting["status"] == "False" and waiting["reason"] == "OwnerLeaving", waiting
    assert "being deleted" in waiting["message"]
    assert kms.call("describe_key", key_id).tags[OWNER_UID_TAG] == old_uid  # not taken while the owner exists
    cluster.patch_key("old", {"metadata": {"finalizers": []}})
    wait_for(lambda: cluster.key("old") is None, 60, "the old KMSKey gone")
    status = cluster.wait_ready("new", timeout=TAKE_OVER)
    assert status["keyId"] == key_id
    assert kms.call("describe_key", key_id).tags[OWNER_UID_TAG] == cluster.key("new")["metadata"]["uid"]  # type: ignore[index]
