"""The operator through a real kube-apiserver, driven by a tenant who may only manage KMSKeys in its own namespace.

The operator acts with its own credential, which can do anything to any key of a KMSBackend; every
namespace may point a KMSKey at every KMSBackend. Whatever a tenant writes into its KMSKey must therefore
never give it power over a key it was not given.

Adoption. ``spec.adopt`` takes over any key no other existing KMSKey manages: a key made with the CLI,
the console or a wire, e.g. the node's ``kubekms/cluster-secrets`` of ``deploy/kind`` (adopted by the
admin's KMSKey only after install). A tenant adopting it first can disable it at once (``enabled:
false``: the cluster's Secrets can no longer be written), put a policy on it, move its aliases, and by
deleting its KMSKey (deletionPolicy Delete, the default) schedule its deletion.

Status. ``status.keyId`` is the operator's record of "the object's key" and is trusted when the key
carries no owner tag: a user allowed to write ``kmskeys/status`` (e.g. a namespace role on
``kubekms.io`` ``*``) points it at any untagged key and deletes the KMSKey: that key is scheduled for
deletion.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client

from kubekms.backend import KeyState
from kubekms.devenv.controlplane import ControlPlane
from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))
from kmskey_support import cluster_with_crds, synced
from operator_support import GROUP, VERSION, Cluster, operator_running

from kubekms_operator.spec import OWNER_UID_TAG

pytestmark = pytest.mark.e2e
PREFIX = "s7k-"
ROUTED = "routed to H1 (operator): see /work/notes/s7/h5-findings.md"


@dataclass(frozen=True)
class Setup:
    plane: ControlPlane
    kms: KMSServer
    backend: str  # a KMSBackend the cluster admin made, its credentials in the admin's namespace


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("s7k-operator")
    with cluster_with_crds(root) as (plane, kms):
        admin = Cluster(plane, f"{PREFIX}admin")
        backend = admin.backend(kms, f"{PREFIX}backend")
        with operator_running(plane, root, [f"{PREFIX}*"]):
            yield Setup(plane, kms, backend)


@pytest.fixture
def tenant(setup: Setup) -> Cluster:
    return Cluster(setup.plane, f"{PREFIX}tenant-{uuid.uuid4().hex[:6]}")


def deleted(tenant: Cluster, name: str) -> None:
    tenant.delete_key(name)
    wait_for(lambda: tenant.key(name) is None, 60, f"KMSKey {tenant.namespace}/{name} gone")


def someone_elses_key(kms: KMSServer) -> str:
    """A key made outside Kubernetes (CLI, console, a wire): no KMSKey manages it."""
    alias = f"kubekms/cluster-secrets-{uuid.uuid4().hex[:6]}"
    return str(kms.call("create_key", alias, description="encrypts the cluster's Secrets").key_id)


def untouched(kms: KMSServer, key_id: str) -> None:
    key = kms.call("describe_key", key_id)
    assert key.state is KeyState.ENABLED, f"the tenant changed key {key_id}: {key.state}"
    assert OWNER_UID_TAG not in key.tags, f"the tenant's KMSKey took key {key_id} over: {key.tags}"


def test_a_tenant_cannot_adopt_a_key_it_was_not_given(setup: Setup, tenant: Cluster) -> None:
    key_id = someone_elses_key(setup.kms)
    alias = setup.kms.call("describe_key", key_id).alias
    tenant.create_key("grab", {"backendRef": {"name": setup.backend}, "adopt": {"alias": alias}, "enabled": False})
    condition = synced(tenant, "grab")
    untouched(setup.kms, key_id)
    assert condition["status"] == "False", condition
    deleted(tenant, "grab")  # deletionPolicy Delete
    untouched(setup.kms, key_id)


def test_a_key_id_written_into_status_by_the_user_is_not_deleted(setup: Setup, tenant: Cluster) -> None:
    tenant.create_key("own", {"backendRef": {"name": setup.backend}})
    tenant.wait_ready("own")
    key_id = someone_elses_key(setup.kms)
    tenant.objects.patch_namespaced_custom_object_status(
        GROUP, VERSION, tenant.namespace, "kmskeys", "own", {"status": {"keyId": key_id}}
    )
    deleted(tenant, "own")  # deletionPolicy Delete
    untouched(setup.kms, key_id)


def test_a_tenant_cannot_take_the_alias_another_namespaces_key_derives(setup: Setup, tenant: Cluster) -> None:
    victim = Cluster(setup.plane, f"{PREFIX}victim-{uuid.uuid4().hex[:6]}")
    squatted = f"k8s/{victim.namespace}/payments"  # what victim's KMSKey "payments" is named in the KMS
    tenant.create_key("squatter", {"backendRef": {"name": setup.backend}, "aliases": [squatted]})
    squatter = synced(tenant, "squatter")
    victim.create_key("payments", {"backendRef": {"name": setup.backend}})
    payments = synced(victim, "payments")
    # Before the fix: the squatter's key held the victim's name (victim's apps encrypted under it) and the
    # victim's KMSKey was AliasInUse for good.
    assert (squatter["status"], payments["status"]) == ("False", "True"), (squatter, payments)
    assert setup.kms.call("describe_key", squatted).key_id == victim.status("payments")["keyId"]


def deep_policy_key(api: client.ApiClient, namespace: str, backend: str, depth: int) -> int:
    """POST a KMSKey whose spec.policy nests ``depth`` objects deep (the apiserver takes up to ~10,000);
    sent as raw JSON, since the Python client's own encoder stops at its recursion limit."""
    statement = {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*", "Condition": "@"}
    spec = {"backendRef": {"name": backend}, "policy": {"Version": "2012-10-17", "Statement": [statement]}}
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "KMSKey", "metadata": {"name": "deep"}, "spec": spec}
    deep = '{"a":' * depth + "{}" + "}" * depth
    text = json.dumps(body, separators=(",", ":")).replace('"@"', deep)
    url = f"{api.configuration.host}/apis/{GROUP}/{VERSION}/namespaces/{namespace}/kmskeys"
    answer = api.rest_client.pool_manager.request(
        "POST", url, headers={"Content-Type": "application/json"}, body=text.encode()
    )
    return int(answer.status)


def test_a_deeply_nested_policy_neither_stops_the_operator_nor_goes_unanswered(setup: Setup, tmp_path: Path) -> None:
    # An operator of its own (prefix outside PREFIX): before 9473426 such a KMSKey stopped the operator serving it.
    prefix = "deep7k-"
    with operator_running(setup.plane, tmp_path, [f"{prefix}*"]):
        tenant = Cluster(setup.plane, f"{prefix}{uuid.uuid4().hex[:6]}")
        assert deep_policy_key(tenant.api, tenant.namespace, setup.backend, 9000) == 201
        tenant.create_key("after", {"backendRef": {"name": setup.backend}})
        # every other KMSKey is still served (before 9473426: "Watcher for kmskeys ... maximum recursion depth")
        tenant.wait_ready("after", timeout=30)
        url = f"{tenant.api.configuration.host}/apis/{GROUP}/{VERSION}/namespaces/{tenant.namespace}/kmskeys/deep"

        def refused() -> bool:  # answered, not dropped: InvalidSpec (or PolicyNotSupported on provider kubekms)
            text = tenant.api.rest_client.pool_manager.request("GET", url).data.decode()  # beyond the client's decoder
            status = text[text.rfind('"status":{') :]  # after spec: the object's own status
            return '"status":"False","type":"Synced"' in status

        wait_for(refused, 60, "the deep KMSKey answered Synced False")
