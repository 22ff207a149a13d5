"""The kubekms static pod of ``deploy/kind/node/`` on a local node, its host paths moved.

The shipped manifest, configs and bootstrap script are the single source: they are copied
unchanged, except the three host directories of the manifest (``/etc/kubekms``,
``/var/lib/kubekms``, ``/var/run/kubekms``), which move under a directory of the caller, and
the image, which is the one built here. Inside the containers every path stays as shipped.
"""

from __future__ import annotations

import json
import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from kubekms.devenv.plugin import PROVIDER_NAME

REPO_ROOT = Path(__file__).resolve().parents[2]
NODE_FILES = REPO_ROOT / "deploy" / "kind" / "node"
MANIFEST = NODE_FILES / "kubekms-static-pod.yaml"
ENCRYPTION_CONFIG = NODE_FILES / "encryption-config.yaml"
SHIPPED_CONFIG_DIR = "/etc/kubekms"
SHIPPED_STATE_DIR = "/var/lib/kubekms"
SHIPPED_SOCKET_DIR = "/var/run/kubekms"
SOCKET_NAME = "plugin.sock"
POD_NAME = "kubekms"
NAMESPACE = "kube-system"
# What the shipped plugin.yaml and server.yaml say; on the host network, so the host sees them.
PLUGIN_HEALTH_URL = "http://127.0.0.1:8787/healthz"
SERVER_PORT = 8443


@dataclass(frozen=True)
class HostDirs:
    """The static pod's host directories, under one root (a unix socket path must stay short)."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "etc"

    @property
    def state(self) -> Path:
        return self.root / "lib"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    @property
    def socket(self) -> Path:
        return self.socket_dir / SOCKET_NAME

    def moved(self, shipped: str) -> str:
        mapping = {SHIPPED_CONFIG_DIR: self.config, SHIPPED_STATE_DIR: self.state, SHIPPED_SOCKET_DIR: self.socket_dir}
        return str(mapping[shipped])


def render_manifest(image: str, dirs: HostDirs) -> dict[str, Any]:
    """The shipped static pod with its hostPath directories moved and ``image`` in every container."""
    pod: dict[str, Any] = yaml.safe_load(MANIFEST.read_text())
    for volume in pod["spec"]["volumes"]:
        if "hostPath" in volume:
            volume["hostPath"]["path"] = dirs.moved(volume["hostPath"]["path"])
    for container in pod["spec"]["initContainers"] + pod["spec"]["containers"]:
        container["image"] = image
        container["imagePullPolicy"] = "Never"  # no registry: the image was imported into the node
    return pod


def encryption_config(dirs: HostDirs) -> str:
    """The shipped EncryptionConfiguration, its plugin endpoint moved to ``dirs``' socket."""
    shipped = ENCRYPTION_CONFIG.read_text()
    endpoint = f"unix://{SHIPPED_SOCKET_DIR}/{SOCKET_NAME}"
    assert endpoint in shipped, f"{ENCRYPTION_CONFIG} no longer names {endpoint}"
    assert f"name: {PROVIDER_NAME}" in shipped
    return shipped.replace(endpoint, f"unix://{dirs.socket}")


def install(image: str, dirs: HostDirs, manifests: Path) -> Path:
    """Copy the node files to the config directory and write the pod into the kubelet's ``manifests``."""
    for directory in (dirs.config, dirs.state, dirs.socket_dir):
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    for source in NODE_FILES.iterdir():
        if source.name != MANIFEST.name:
            shutil.copyfile(source, dirs.config / source.name)
    target = manifests / f"{POD_NAME}.yaml"
    temporary = manifests / f".{POD_NAME}.yaml.new"  # the kubelet skips dot files: it never reads half a file
    temporary.write_text(json.dumps(render_manifest(image, dirs), indent=2))
    temporary.rename(target)
    return target


def plugin_healthy() -> bool:
    with urllib.request.urlopen(PLUGIN_HEALTH_URL, timeout=2) as answer:
        return bool(answer.status == 200)
