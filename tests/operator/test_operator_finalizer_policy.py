"""The finalizer written by the apiserver at creation (kubekms_operator.finalizer_policy).

With the MutatingAdmissionPolicy installed, a KMSKey carries the operator's finalizer from its
creation on, so the operator creates its key without a finalizer patch of its own; a KMSKey
deleted while no operator runs still gets its key's deletion scheduled. Without the policy
(every other test module), kopf adds the finalizer itself.
"""

from __future__ import annotations

import json
import ssl
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from operator_support import GROUP, VERSION, Cluster, operator_running

from kubekms.backend import KeyState
from kubekms.devenv.controlplane import ControlPlane
from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import wait_for
from kubekms_operator import finalizer_policy
from kubekms_operator.finalizer_policy import FINALIZER, NotExpressible, manifests, namespace_regex

NAMESPACE_PREFIX = "fp-"


@pytest.fixture
def policy(cluster: Cluster) -> Iterator[None]:
    finalizer_policy.install(cluster.api, (f"{NAMESPACE_PREFIX}*",), cluster.namespace)
    try:
        yield
    finally:
        finalizer_policy.uninstall(cluster.api)


def test_namespace_patterns_become_anchored_regexes_or_are_refused() -> None:
    assert namespace_regex("team-*") == "^team-.*$"
    assert namespace_regex("ns-?") == "^ns-.$"
    for pattern in ("a,b", "!kube-*", "ns-[ab]", "a.b"):
        with pytest.raises(NotExpressible):
            namespace_regex(pattern)
    policy, _ = manifests(("shop", "team-*"))
    condition = policy["spec"]["matchConditions"][0]["expression"]
    assert condition == '["^shop$", "^team-.*$"].exists(p, request.namespace.matches(p))'
    everywhere, _ = manifests(())
    assert "matchConditions" not in everywhere["spec"]


@pytest.mark.e2e
def test_a_key_is_created_without_a_finalizer_patch_and_deleted_while_the_operator_was_down(
    plane: ControlPlane, kms: KMSServer, cluster: Cluster, policy: None, tmp_path: Path
) -> None:
    backend = cluster.backend(kms, cluster.namespace)
    created = cluster.create_key("early", {"backendRef": {"name": backend}})  # no operator runs yet
    assert created["metadata"]["finalizers"] == [FINALIZER]

    with operator_running(plane, tmp_path, [f"{NAMESPACE_PREFIX}*"]):
        key_id = cluster.wait_ready("early")["keyId"]
    # Only the creation and the status write touched the object: no manager patched its metadata.
    fields = cluster.key("early")["metadata"]["managedFields"]
    creator = next(entry["manager"] for entry in created["metadata"]["managedFields"])
    assert {entry["manager"] for entry in fields if entry.get("subresource") != "status"} == {creator}, fields

    cluster.delete_key("early")  # no operator runs: the finalizer holds the object
    assert cluster.key("early")["metadata"]["deletionTimestamp"]
    with operator_running(plane, tmp_path, [f"{NAMESPACE_PREFIX}*"]):
        wait_for(lambda: cluster.key("early") is None, 60, "the KMSKey gone once its key's deletion is scheduled")
    assert kms.call("describe_key", key_id).state == KeyState.PENDING_DELETION


@pytest.mark.e2e
def test_kmskeys_outside_the_served_namespaces_get_no_finalizer(cluster: Cluster, policy: None) -> None:
    other = f"other-{cluster.namespace}"
    cluster.core.create_namespace({"metadata": {"name": other}})
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "KMSKey", "metadata": {"name": "x"}}
    body["spec"] = {"backendRef": {"name": "none"}}
    created = cluster.objects.create_namespaced_custom_object(GROUP, VERSION, other, "kmskeys", body, dry_run="All")
    assert "finalizers" not in created["metadata"]
    served = cluster.objects.create_namespaced_custom_object(
        GROUP, VERSION, cluster.namespace, "kmskeys", body, dry_run="All"
    )
    assert served["metadata"]["finalizers"] == [FINALIZER]
    cluster.core.delete_namespace(other)


@pytest.mark.e2e
def test_a_server_side_apply_of_the_manifest_keeps_the_finalizer(
    plane: ControlPlane, cluster: Cluster, policy: None
) -> None:
    """The finalizer written in admission belongs to no field manager: a GitOps tool re-applying the
    manifest (which never lists it) with server-side apply does not remove it."""
    manifest = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "KMSKey", "metadata": {"name": "applied"}}
    manifest["spec"] = {"backendRef": {"name": "none"}, "description": "first"}
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{cluster.namespace}/kmskeys/applied?fieldManager=gitops"
    first = server_side_apply(plane, path, manifest)
    assert first["metadata"]["finalizers"] == [FINALIZER]
    manifest["spec"]["description"] = "second"
    again = server_side_apply(plane, path, manifest)
    assert again["spec"]["description"] == "second" and again["metadata"]["finalizers"] == [FINALIZER]
    cluster.patch_key("applied", {"metadata": {"finalizers": None}})  # no operator serves it here


def server_side_apply(plane: ControlPlane, path: str, manifest: dict[str, Any]) -> dict[str, Any]:
    """A PATCH with content type apply-patch+yaml, as `kubectl apply --server-side` sends it."""
    context = ssl.create_default_context(cafile=str(plane.pki.ca_cert))
    context.load_cert_chain(str(plane.pki.admin_cert), str(plane.pki.admin_key))
    request = urllib.request.Request(
        f"{plane.apiserver_url}{path}",
        data=json.dumps(manifest).encode(),
        method="PATCH",
        headers={"Content-Type": "application/apply-patch+yaml"},
    )
    with urllib.request.urlopen(request, context=context, timeout=10) as answer:
        applied: dict[str, Any] = json.loads(answer.read())
        return applied
