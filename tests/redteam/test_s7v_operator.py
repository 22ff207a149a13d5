"""Adversarial review of the operator's adoption consent (ee884b1), read as an upgrade.

KMSBackends made before spec.adoption existed have none, and Helm does not upgrade CRDs. A KMSKey
that adopted a key before the upgrade owns it (the key carries its owner-uid tag), yet every reconcile
of a KMSKey with spec.adopt now asks for the backend's consent: after the upgrade such a KMSKey is
Synced False AdoptionNotAllowed for good: its spec changes, rotations and drift corrections stop (the
cluster's Secrets key of deploy/kind is such a KMSKey). Consent gates the take-over, not the management
of a key the KMSKey already owns.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubekms.devenv.controlplane import ControlPlane
from kubekms.devenv.kmsserver import KMSServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))
from kmskey_support import cluster_with_crds, synced
from operator_support import GROUP, VERSION, Cluster, operator_running

from kubekms_operator.spec import OWNER_UID_TAG

pytestmark = pytest.mark.e2e
PREFIX = "s7v-"


@dataclass(frozen=True)
class Setup:
    plane: ControlPlane
    kms: KMSServer
    admin: Cluster


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("s7v-operator")
    with cluster_with_crds(root) as (plane, kms), operator_running(plane, root, [f"{PREFIX}*"]):
        yield Setup(plane, kms, Cluster(plane, f"{PREFIX}admin"))


def test_a_key_adopted_before_the_upgrade_stays_managed_by_its_kmskey(setup: Setup) -> None:
    admin, kms = setup.admin, setup.kms
    backend = admin.backend(kms, f"{PREFIX}b-{uuid.uuid4().hex[:6]}", adoption=(admin.namespace,))
    existing = kms.call("create_key", f"kubekms/cluster-secrets-{uuid.uuid4().hex[:6]}", description="before")
    admin.create_key("cluster-secrets", {"backendRef": {"name": backend}, "adopt": {"keyId": existing.key_id}})
    assert admin.wait_ready("cluster-secrets")["keyId"] == existing.key_id
    uid = admin.key("cluster-secrets")["metadata"]["uid"]  # type: ignore[index]
    assert kms.call("describe_key", existing.key_id).tags[OWNER_UID_TAG] == uid  # the KMSKey owns it now

    # The upgrade's state: a KMSBackend made before spec.adoption existed has none.
    admin.objects.patch_cluster_custom_object(GROUP, VERSION, "kmsbackends", backend, {"spec": {"adoption": None}})
    admin.patch_key("cluster-secrets", {"spec": {"description": "after the upgrade"}})
    condition = synced(admin, "cluster-secrets")
    assert condition["status"] == "True", condition
    assert kms.call("describe_key", existing.key_id).description == "after the upgrade"
