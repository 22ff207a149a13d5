"""spec.policy: applied at creation, put back when changed outside Kubernetes, refused precisely when wrong.

The operator is a real subprocess (drift interval 2 s); the KMSBackend reaches the kubekms server through
its AWS wire (provider aws), which has key policies; the out-of-band change is a boto3 PutKeyPolicy.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from key_types_support import boto_kms
from operator_support import Cluster, operator_running

from kubekms.devenv.controlplane import ControlPlane
from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import ManagedProcess, wait_for

pytestmark = pytest.mark.e2e
NAMESPACE_PREFIX = "kp-"
ADMIN_STATEMENT = {
    "Sid": "Admin",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::default:root"},
    "Action": "kms:*",
    "Resource": "*",
}
POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        ADMIN_STATEMENT,
        {"Sid": "NoSigningForTheAuditor", "Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::default:user/auditor"},
         "Action": ["kms:Sign", "kms:Verify"], "Resource": "*"},
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def operator(plane: ControlPlane, kms: KMSServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    with operator_running(plane, tmp_path_factory.mktemp("operator"), [f"{NAMESPACE_PREFIX}*"], drift=2) as process:
        yield process


def stored_policy(server: KMSServer, key_id: str) -> Any:
    return json.loads(boto_kms(server).get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])


def test_the_policy_is_applied_and_put_back_after_an_out_of_band_change(
    cluster: Cluster, kms: KMSServer, operator: ManagedProcess
) -> None:
    backend = cluster.backend(kms, f"kp-{uuid.uuid4().hex[:8]}", provider="aws")
    cluster.create_key("guarded", {"backendRef": {"name": backend}, "policy": POLICY})
    key_id = cluster.wait_ready("guarded")["keyId"]
    assert stored_policy(kms, key_id) == POLICY

    loose = {"Version": "2012-10-17", "Statement": [ADMIN_STATEMENT]}
    boto_kms(kms).put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(loose))
    wait_for(lambda: stored_policy(kms, key_id) == POLICY, 30, "the operator to put the policy back")
    drift = wait_for(
        lambda: [e for e in cluster.events("guarded") if e.reason == "DriftCorrected"], 30, "a DriftCorrected event"
    )
    assert f"key policy of key {key_id} set to spec.policy" in drift[0].message


def test_a_policy_outside_the_grammar_is_invalid_spec_and_creates_nothing(
    cluster: Cluster, kms: KMSServer, operator: ManagedProcess
) -> None:
    backend = cluster.backend(kms, f"kp-{uuid.uuid4().hex[:8]}", provider="aws")
    wrong = {"Version": "2012-10-17", "Statement": [{**ADMIN_STATEMENT, "Effect": "Perhaps"}]}
    cluster.create_key("wrong", {"backendRef": {"name": backend}, "policy": wrong})
    synced = wait_for(lambda: (c := cluster.condition("wrong", "Synced")).get("reason") and c, 30, "a condition")
    assert synced["status"] == "False" and synced["reason"] == "InvalidSpec"
    assert synced["message"].startswith("spec.policy: ") and "Effect" in synced["message"]
    assert "keyId" not in cluster.status("wrong")


def test_a_policy_on_a_backend_without_key_policies_is_refused_by_name(
    cluster: Cluster, kms: KMSServer, operator: ManagedProcess
) -> None:
    backend = cluster.backend(kms, f"kp-{uuid.uuid4().hex[:8]}")  # provider kubekms: the v1.0 wire
    cluster.create_key("nopolicies", {"backendRef": {"name": backend}, "policy": POLICY})
    synced = wait_for(lambda: (c := cluster.condition("nopolicies", "Synced")).get("reason") and c, 30, "a condition")
    assert synced["reason"] == "PolicyNotSupported"
    assert synced["message"].startswith("spec.policy: provider kubekms")  # its label names the v1.0 wire
    assert synced["message"].endswith("has no key policies; remove spec.policy")
    assert "keyId" not in cluster.status("nopolicies")
