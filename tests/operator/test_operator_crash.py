"""Idempotent creation: the operator dies after the backend created the key, before status was written.

Fault injection: ``KUBEKMS_OPERATOR_FAULT=after-create`` makes the operator process exit
(``os._exit``) right after ``create_key`` returned and before the key id reaches the
KMSKey's status (kubekms_operator.faults). Both operators are real subprocesses.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from operator_support import Cluster, operator_running, start_operator

from kubekms.devenv.controlplane import ControlPlane
from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import wait_for

pytestmark = pytest.mark.e2e
NAMESPACE_PREFIX = "cr-"


def test_a_crash_between_create_and_status_leaves_exactly_one_key(
    plane: ControlPlane, kms: KMSServer, cluster: Cluster, tmp_path: Path
) -> None:
    backend = cluster.backend(kms, cluster.namespace)
    doomed = start_operator(plane, tmp_path, [cluster.namespace], env={"KUBEKMS_OPERATOR_FAULT": "after-create"})
    try:
        cluster.create_key("once", {"backendRef": {"name": backend}, "description": "made once"})
        wait_for(lambda: not doomed.running, 60, "the operator to die right after create_key")
        assert doomed.process is not None and doomed.process.returncode == 17
    finally:
        doomed.kill()
    uid = cluster.key("once")["metadata"]["uid"]
    assert "keyId" not in cluster.status("once"), "the crash came before the key id reached status"
    created = kms.call("find_keys_by_tag", "kubekms.io/owner-uid", uid)
    assert len(created) == 1

    with operator_running(plane, tmp_path, [cluster.namespace]):
        status = cluster.wait_ready("once")
    assert status["keyId"] == created[0].key_id
    assert [key.key_id for key in kms.call("find_keys_by_tag", "kubekms.io/owner-uid", uid)] == [created[0].key_id]
    assert kms.call("describe_key", f"k8s/{cluster.namespace}/once").key_id == created[0].key_id
