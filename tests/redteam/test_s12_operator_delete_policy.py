"""Deleting a KMSKey honours its deletionPolicy whatever else its spec says.

The delete handler parsed the whole spec, and a spec the operator refuses (InvalidSpec) ended with a
Warning "key neither deleted nor retained" and the finalizer removed: the key stayed enabled with
nobody managing it. One schema-valid way there: a spec.policy nested deeper than the operator takes
(MAX_POLICY_DEPTH; the CRD leaves the policy's inside free), e.g. an edit of a working KMSKey's
policy. Its deletionPolicy (Delete, the default) and pendingWindowDays were perfectly readable, and
spec.policy has no part in a deletion. Expected: the key is scheduled for deletion after its window.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kmskey_support import cluster_with_crds, synced

from kubekms.backend import KeyState
from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import wait_for
from kubekms_operator.spec import MAX_POLICY_DEPTH

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))
from operator_support import Cluster, operator_running

pytestmark = pytest.mark.e2e
PREFIX = "s12del-"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, KMSServer, str]]:
    root = tmp_path_factory.mktemp("s12-delete")
    with cluster_with_crds(root) as (plane, kms):
        cluster = Cluster(plane, f"{PREFIX}{uuid.uuid4().hex[:6]}")
        backend = cluster.backend(kms, f"{PREFIX}backend")
        with operator_running(plane, root, [f"{PREFIX}*"]):
            yield cluster, kms, backend


def deep_policy(depth: int) -> dict[str, Any]:
    condition: dict[str, Any] = {}
    for _ in range(depth):
        condition = {"a": condition}
    statement = {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}
    return {"Version": "2012-10-17", "Statement": [{**statement, "Condition": condition}]}


def test_a_refused_policy_does_not_keep_the_key_from_its_deletion(setup: tuple[Cluster, KMSServer, str]) -> None:
    cluster, kms, backend = setup
    cluster.create_key("doomed", {"backendRef": {"name": backend}, "pendingWindowDays": 9})
    key_id = cluster.wait_ready("doomed")["keyId"]
    cluster.patch_key("doomed", {"spec": {"policy": deep_policy(MAX_POLICY_DEPTH + 4)}})
    refused = synced(cluster, "doomed")
    assert refused["status"] == "False" and "deeper than" in refused["message"]
    cluster.delete_key("doomed")
    wait_for(lambda: cluster.key("doomed") is None, 60, "KMSKey doomed gone")
    key = kms.call("describe_key", key_id)
    assert key.state is KeyState.PENDING_DELETION, f"deletionPolicy Delete, yet the key is {key.state.name}"
    assert key.deletion_date is not None
