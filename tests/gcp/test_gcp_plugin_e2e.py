"""The KMS v2 plugin with provider gcp, called by a real kube-apiserver, on our server's Cloud KMS gRPC API.

The plugin authenticates with a service-account key (self-signed JWTs) whose principal has
the plugin's permissions on one crypto key only; a rotation made by someone else reaches the
apiserver's new writes through the plugin's Status, and old Secrets stay readable.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from kubekms.devenv import encrypted_object
from kubekms.devenv.controlplane import ControlPlane, encryption_config
from kubekms.devenv.gcpserver import GcpServer, gcp_server
from kubekms.devenv.kmsserver import Principal
from kubekms.devenv.plugin import PluginProcess, kms_provider
from kubekms.devenv.processes import wait_for
from kubekms.providers import open_backend
from kubekms_plugin import BACKEND_ACTIONS

pytestmark = pytest.mark.e2e

PROJECT = "proj-plugin"
RING = "cluster"
KEY = "etcd"
PLAINTEXT = "gcp-e2e-plaintext-51f0"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    name = f"projects/{PROJECT}/locations/global/keyRings/{RING}/cryptoKeys/{KEY}"
    # Cloud KMS has no GenerateDataKey: provider gcp makes data keys itself and wraps them with Encrypt
    actions = (*BACKEND_ACTIONS, "encrypt-datakey")
    plugin = Principal("plugin", actions=actions, keys=(name,), projects=(PROJECT,))
    with gcp_server(tmp_path_factory.mktemp("kms-gcp"), principals=(plugin,), project_id=PROJECT) as running:
        yield running


def admin(server: GcpServer, operation: str, *args: Any) -> Any:
    async def run() -> Any:
        backend = await open_backend(server.backend_config(key_ring=RING))
        try:
            return await getattr(backend, operation)(*args)
        finally:
            await backend.close()

    return asyncio.run(run())


def core(plane: ControlPlane) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(config_file=str(plane.kubeconfig)))


def create_secret(plane: ControlPlane, name: str) -> str:
    """The key id the plugin reported for the Secret's new DEK, read from etcd."""
    core(plane).create_namespaced_secret("default", {"metadata": {"name": name}, "stringData": {"v": PLAINTEXT}})
    stored = plane.etcd_get(f"/registry/secrets/default/{name}") or b""
    assert stored.startswith(b"k8s:enc:kms:v2:kubekms:") and PLAINTEXT.encode() not in stored
    return encrypted_object.parse(stored).key_id


def read_secret(plane: ControlPlane, name: str) -> str:
    return base64.b64decode(core(plane).read_namespaced_secret(name, "default").data["v"]).decode()


def test_secrets_are_encrypted_with_a_cloud_kms_key_and_follow_its_rotation(
    server: GcpServer, tmp_path: Path, control_plane_factory: Callable[..., ControlPlane]
) -> None:
    admin(server, "create_key", KEY)
    backend = {
        "provider": "gcp",
        "endpoint": f"http://{server.endpoint}",  # plaintext on loopback
        "project_id": PROJECT,
        "location": "global",
        "key_ring": RING,
        "credentials_file": str(server.key_file("plugin")),
    }
    plugin = PluginProcess(tmp_path / "plugin", {"backend": backend, "key": KEY, "poll_interval": "1s"})
    plugin.start()
    try:
        plane = control_plane_factory(encryption_config=encryption_config(kms_provider(plugin.endpoint)))
        assert create_secret(plane, "first") == f"{KEY}:v1"

        admin(server, "rotate_key", KEY)
        wait_for(lambda: plugin.status()["key_id"] == f"{KEY}:v2", 20, "the plugin to report v2")

        # Cold caches on both sides: the first Secret's KEK is unwrapped again through Cloud KMS Decrypt. The
        # restarted apiserver asks Status at once (a running one does so each minute, which tests/e2e's
        # plugin e2e waits for), so its new writes are under version 2.
        plugin.stop()
        plugin.start()
        plane.restart_apiserver()
        assert read_secret(plane, "first") == PLAINTEXT
        assert create_secret(plane, "second") == f"{KEY}:v2"
        assert read_secret(plane, "second") == PLAINTEXT
    finally:
        plugin.stop()
    audit = Path(server.server.audit_log).read_text()
    assert "gcp:" in audit and '"principal":"plugin"' in audit
