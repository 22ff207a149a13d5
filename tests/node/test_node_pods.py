"""The node runs real pods: it registers Ready, the scheduler and controllers run a Deployment
whose pod authenticates to kube-apiserver with its ServiceAccount token, the kubelet runs a
static pod from its manifest directory, and `kubectl logs` (the kubectl built here) works."""

from __future__ import annotations

import json

import pytest
import yaml

from kubekms.devenv.binaries import KUBERNETES_VERSION
from kubekms.devenv.node import Node
from kubekms.devenv.node_config import NODE_IP
from kubekms.devenv.processes import wait_for

pytestmark = pytest.mark.node


def test_node_registers_ready_with_its_own_address(node: Node) -> None:
    status = node.node_status()
    assert node.ready()
    assert {"type": "InternalIP", "address": NODE_IP} in status["addresses"]  # type: ignore[operator]
    info = status["nodeInfo"]
    assert isinstance(info, dict)
    assert info["kubeletVersion"] == KUBERNETES_VERSION
    assert info["containerRuntimeVersion"].startswith("containerd://")


def _deployment(name: str, image: str) -> str:
    labels = {"app": name}
    return yaml.safe_dump(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "terminationGracePeriodSeconds": 2,
                        "containers": [{"name": "probe", "image": image, "imagePullPolicy": "Never"}],
                    },
                },
            },
        }
    )


def test_deployment_pod_authenticates_with_its_service_account(node: Node, probe_image: str, namespace: str) -> None:
    node.kubectl("apply", "-n", namespace, "-f", "-", stdin=_deployment("probe", probe_image))
    node.kubectl("rollout", "status", "-n", namespace, "deployment/probe", "--timeout=90s")

    def reviewed() -> str | None:
        logs = node.kubectl("logs", "-n", namespace, "deployment/probe", check=False).stdout
        return logs if "SelfSubjectReview" in logs else None

    logs = wait_for(reviewed, 60, "the probe's SelfSubjectReview in kubectl logs")
    assert "probe: GET /api status=200" in logs
    review = json.loads(logs.split("SelfSubjectReview status=201 err=<nil> body=", 1)[1].splitlines()[0])
    assert review["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:default"
    pod = json.loads(node.kubectl("get", "pods", "-n", namespace, "-l", "app=probe", "-o", "json").stdout)["items"][0]
    assert pod["spec"]["nodeName"] == node.name  # placed by kube-scheduler
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"  # made by the controllers


def test_static_pod_from_the_manifest_directory_runs(node: Node, probe_image: str) -> None:
    name = "static-probe"
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "kube-system"},
        "spec": {
            "hostNetwork": True,
            "terminationGracePeriodSeconds": 2,
            "containers": [{"name": "probe", "image": probe_image, "imagePullPolicy": "Never"}],
        },
    }
    path = node.manifests / f"{name}.yaml"
    path.write_text(yaml.safe_dump(manifest))
    mirror = f"{name}-{node.name}"
    try:
        node.kubectl("wait", "-n", "kube-system", f"pod/{mirror}", "--for=create", "--timeout=60s")
        node.kubectl("wait", "-n", "kube-system", f"pod/{mirror}", "--for=condition=Ready", "--timeout=90s")
        logs = node.kubectl("logs", "-n", "kube-system", mirror).stdout
        assert "probe: started" in logs
        assert "probe: no token" in logs  # static pods get no ServiceAccount token
    finally:
        path.unlink()
    node.kubectl("wait", "-n", "kube-system", f"pod/{mirror}", "--for=delete", "--timeout=60s")
