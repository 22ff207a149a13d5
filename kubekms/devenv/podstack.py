"""``kubekms dev up --pods``: the stack the way a user deploys it, on a real local node.

1. the image is built (``kubekms dev image``) and imported into the node's containerd;
2. the static pod of ``deploy/kind/node/`` (bootstrap, kubekms server, KMS v2 plugin) is
   written into the kubelet's manifest directory, its host paths under the state directory;
   the kubelet starts it, the bootstrap makes the key ``kubekms/cluster-secrets``;
3. kube-apiserver (a process) restarts with the shipped EncryptionConfiguration, its endpoint
   moved to the static pod's socket: Secrets are encrypted through the plugin from then on;
4. ``helm upgrade --install`` of ``charts/kubekms`` with the operator, the in-cluster server
   (its PVC bound to a pre-made hostPath PV) and the default KMSBackend, all as pods;
5. a KMSBackend ``node`` for the static pod's server (the operator principal the bootstrap
   made) and the KMSKey ``kubekms-system/cluster-secrets`` adopting the cluster's key, which
   becomes Ready through the operator pod.

Each run is a fresh cluster; the static pod's state (the key that encrypts Secrets) is kept.

The node has no cluster DNS and no kube-proxy: :mod:`kubekms.devenv.services` routes the
release's ClusterIPs, and the default KMSBackend's endpoint is the server Service's ClusterIP.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

from kubekms.devenv import image as image_module
from kubekms.devenv import staticpod
from kubekms.devenv.binaries import ensure_helm
from kubekms.devenv.controlplane import ControlPlane, control_plane
from kubekms.devenv.node import Node, node
from kubekms.devenv.processes import wait_for
from kubekms.devenv.services import routed_services
from kubekms.devenv.stack import (
    KEY_ALIAS,
    KEY_NAME,
    NAMESPACE,
    apply_objects,
    is_ready,
    say,
    show_evidence,
    stop_on_signals,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "kubekms"
RELEASE = "kubekms"
OPERATOR = f"{RELEASE}-operator"
SERVER = f"{RELEASE}-server"
DEFAULT_BACKEND = "kubekms-embedded"  # the chart's defaultBackend.name
NODE_BACKEND = "node"
NODE_CREDENTIALS = "kubekms-node-credentials"
SERVER_PVC = f"data-{SERVER}-0"
SERVER_PV = "kubekms-pods-server-data"
SERVER_UID = 65532  # the image's user: a hostPath PV gets no fsGroup, so its directory is made theirs
READY_TIMEOUT = 240.0


@dataclass(frozen=True)
class PodPaths:
    root: Path

    @property
    def node(self) -> Path:
        return self.root / "node"

    @property
    def static_pod(self) -> staticpod.HostDirs:
        return staticpod.HostDirs(self.root / "kms")

    @property
    def server_volume(self) -> Path:
        return self.root / "pv" / "server-data"

    @property
    def values(self) -> Path:
        return self.root / "values.yaml"


@dataclass
class PodStack:
    plane: ControlPlane
    node: Node
    paths: PodPaths
    image: str
    api: client.ApiClient

    def helm(self, *arguments: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        argv = [str(ensure_helm()), f"--kubeconfig={self.plane.kubeconfig}", "--namespace", NAMESPACE, *arguments]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"helm {arguments[0]} failed: {result.stderr.strip()}")
        return result

    def values(self) -> dict[str, Any]:
        repository, tag = self.image.rsplit(":", 1)
        return {
            "image": {"repository": repository, "tag": tag, "pullPolicy": "Never"},
            # one operator pod on the one node (the chart's default is 2 with leader election; its
            # failover is tested against processes in tests/operator/test_operator_failover.py)
            "operator": {"replicas": 1, "reencryption": {"enabled": True}, "credentialSecrets": [NODE_CREDENTIALS]},
            "server": {"enabled": True},
            "defaultBackend": {"enabled": True},
        }

    def install_chart(self, *extra: str) -> None:
        """``helm upgrade --install`` with this stack's values (and ``extra`` flags); waits for Ready pods."""
        self.paths.values.write_text(yaml.safe_dump(self.values()))
        self.helm(
            "upgrade", "--install", RELEASE, str(CHART), "-f", str(self.paths.values), "--wait", "--timeout=4m", *extra
        )

    def point_default_backend_at_service(self) -> None:
        """No cluster DNS here: the default KMSBackend reaches the server by its Service's ClusterIP."""
        service = client.CoreV1Api(self.api).read_namespaced_service(SERVER, NAMESPACE)
        port = service.spec.ports[0].port
        endpoint = f"http://{service.spec.cluster_ip}:{port}"
        client.CustomObjectsApi(self.api).patch_cluster_custom_object(
            "kubekms.io", "v1alpha1", "kmsbackends", DEFAULT_BACKEND, {"spec": {"endpoint": endpoint}}
        )

    def backend_ready(self, name: str) -> bool:
        body = client.CustomObjectsApi(self.api).get_cluster_custom_object(
            "kubekms.io", "v1alpha1", "kmsbackends", name
        )
        return is_ready(body.get("status") or {})

    def key_status(self, name: str = KEY_NAME, namespace: str = NAMESPACE) -> dict[str, Any]:
        body = client.CustomObjectsApi(self.api).get_namespaced_custom_object(
            "kubekms.io", "v1alpha1", namespace, "kmskeys", name
        )
        status: dict[str, Any] = body.get("status") or {}
        return status


# --- the steps ---------------------------------------------------------------------------


def start_static_pod(plane: ControlPlane, running: Node, image: str, dirs: staticpod.HostDirs) -> None:
    staticpod.install(image, dirs, running.manifests)
    wait_for(
        lambda: dirs.socket.exists() and staticpod.plugin_healthy(), READY_TIMEOUT, "the static pod's plugin serving"
    )
    plane.restart_apiserver(encryption_config=staticpod.encryption_config(dirs))


def node_objects(dirs: staticpod.HostDirs) -> list[dict[str, Any]]:
    """The release namespace and the Secret with the static pod server's operator credentials."""
    credentials = yaml.safe_load((dirs.state / "credentials" / "operator.yaml").read_text())
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": NODE_CREDENTIALS, "namespace": NAMESPACE},
            "stringData": {"access_key": credentials["access_key"], "secret_key": credentials["secret_key"]},
        },
    ]


def server_volume(paths: PodPaths) -> dict[str, Any]:
    """A pre-made hostPath PV bound to the server's PVC (this node has no provisioner)."""
    paths.server_volume.mkdir(parents=True, exist_ok=True)
    os.chown(paths.server_volume, SERVER_UID, SERVER_UID)
    paths.server_volume.chmod(0o700)
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": SERVER_PV},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            "claimRef": {"namespace": NAMESPACE, "name": SERVER_PVC},
            "hostPath": {"path": str(paths.server_volume), "type": "Directory"},
        },
    }


def cluster_key_objects(running: Node) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "kubekms.io/v1alpha1",
            "kind": "KMSBackend",
            "metadata": {"name": NODE_BACKEND},
            "spec": {
                "provider": "kubekms",
                "endpoint": f"http://{running.ip}:{staticpod.SERVER_PORT}",
                "projectId": "default",
                "default": False,  # the chart's embedded server is the default
                "credentialsSecretRef": {"namespace": NAMESPACE, "name": NODE_CREDENTIALS},
                "adoption": {"namespaces": [NAMESPACE]},  # the KMSKey below adopts the cluster's key
            },
        },
        {
            "apiVersion": "kubekms.io/v1alpha1",
            "kind": "KMSKey",
            "metadata": {"name": KEY_NAME, "namespace": NAMESPACE},
            "spec": {
                "backendRef": {"name": NODE_BACKEND},
                "adopt": {"alias": KEY_ALIAS},
                "deletionPolicy": "Retain",
                "clusterEncryption": {"enabled": True},
            },
        },
    ]


@contextlib.contextmanager
def pod_stack(plane: ControlPlane, running: Node, paths: PodPaths) -> Iterator[PodStack]:
    """The static pod, encryption, the chart and the cluster key on a running node of its own.

    Nothing is undone on exit: the node (its pods) and the control plane go with it.
    """
    say("image")
    built = image_module.ensure_image()
    say("image into the node's containerd")
    running.import_image(image_module.archive(built))
    dirs = paths.static_pod
    say(f"static pod {staticpod.NAMESPACE}/{staticpod.POD_NAME} (host paths under {dirs.root})")
    start_static_pod(plane, running, built.reference, dirs)
    say("  plugin serving; kube-apiserver restarted encrypting Secrets through it")
    api = config.new_client_from_config(config_file=str(plane.kubeconfig))
    stack = PodStack(plane=plane, node=running, paths=paths, image=built.reference, api=api)
    apply_objects(api, [*node_objects(dirs), server_volume(paths)])
    with routed_services(api, NAMESPACE):
        say(f"helm upgrade --install {RELEASE} charts/kubekms (operator, server, default backend)")
        stack.install_chart()
        stack.point_default_backend_at_service()
        say(f"KMSBackend {NODE_BACKEND} and KMSKey {NAMESPACE}/{KEY_NAME} (adopts {KEY_ALIAS})")
        apply_objects(api, cluster_key_objects(running))
        try:
            wait_for(lambda: is_ready(stack.key_status()), READY_TIMEOUT, f"KMSKey {KEY_NAME} Ready")
            wait_for(lambda: stack.backend_ready(DEFAULT_BACKEND), READY_TIMEOUT, f"KMSBackend {DEFAULT_BACKEND} Ready")
        except TimeoutError as error:
            raise TimeoutError(f"{error}; {_conditions(stack)}") from None
        yield stack


def _conditions(stack: PodStack) -> str:
    """What the operator wrote on the cluster key and the backends: why a wait timed out."""
    custom = client.CustomObjectsApi(stack.api)
    objects = [custom.get_namespaced_custom_object("kubekms.io", "v1alpha1", NAMESPACE, "kmskeys", KEY_NAME)]
    objects += custom.list_cluster_custom_object("kubekms.io", "v1alpha1", "kmsbackends")["items"]
    said = []
    for body in objects:
        for condition in (body.get("status") or {}).get("conditions") or []:
            said.append(
                f"{body['kind']} {body['metadata']['name']} {condition['type']}={condition['status']}"
                f" ({condition.get('reason')}: {condition.get('message')})"
            )
    return "; ".join(said) or "no conditions written (is the operator pod running?)"


# --- `kubekms dev up --pods` ---------------------------------------------------------------


def run(state_dir: Path, *, check: bool) -> int:
    started = time.monotonic()
    stop_on_signals()  # SIGTERM/SIGHUP undo the node's host changes as Ctrl-C does
    paths = PodPaths(state_dir)
    paths.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    # A fresh cluster each run (etcd in a temporary directory, the server's PV emptied): a kept
    # etcd holds Secrets only the static pod's plugin can read, and kube-apiserver must be ready
    # before the node that starts that plugin. The node's KMS (its keys) is kept in kms/.
    shutil.rmtree(paths.server_volume, ignore_errors=True)
    say("etcd + kube-apiserver (fresh), then the node (kubelet, containerd, scheduler, controllers)")
    with (
        control_plane(pods=True) as plane,
        node(plane, state_dir=paths.node) as running,
        pod_stack(plane, running, paths) as stack,
    ):
        say(f"pods Ready: {', '.join(pod_names(stack))}")
        hint = f"{running.kubectl_path} --kubeconfig {plane.kubeconfig} get pods -A"
        return show_evidence(plane, stack.api, stack.key_status(), started, check=check, hint=hint)


def pod_names(stack: PodStack) -> list[str]:
    core = client.CoreV1Api(stack.api)
    pods = [*core.list_namespaced_pod(NAMESPACE).items, *core.list_namespaced_pod(staticpod.NAMESPACE).items]
    return sorted(f"{pod.metadata.namespace}/{pod.metadata.name}" for pod in pods)


def credentials_of(stack: PodStack, secret: str) -> dict[str, str]:
    """access_key and secret_key of a credentials Secret in the release namespace."""
    data = client.CoreV1Api(stack.api).read_namespaced_secret(secret, NAMESPACE).data
    return {key: base64.b64decode(data[key]).decode() for key in ("access_key", "secret_key")}
