"""End to end with provider aws: kube-apiserver's KMS v2 -> kubekms plugin -> our server's AWS KMS wire.

Real etcd and kube-apiserver, a real plugin process and a real server; a Secret is written
through the apiserver, stored KMS v2-encrypted in etcd under the AWS-wire key's id, read back,
and stays readable after the key rotates (the plugin's key_id changes, old data decrypts).
"""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from kubekms.devenv import encrypted_object
from kubekms.devenv.controlplane import ControlPlane
from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server
from kubekms.devenv.plugin import PluginProcess
from kubekms.providers import BackendConfig, open_backend

pytestmark = pytest.mark.e2e

REGION = "eu-west-1"
ALIAS = "etcd-aws"
PLUGIN_ACTIONS = ("create-datakey", "decrypt-datakey", "describe-key", "get-key-rotation-status")


def encryption_config(socket: Path) -> str:
    return f"""apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - kms:
          apiVersion: v2
          name: kubekms-aws
          endpoint: unix://{socket}
          timeout: 5s
      - identity: {{}}
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[KMSServer]:
    plugin = Principal("plugin", actions=PLUGIN_ACTIONS, keys=(ALIAS,), projects=("default",))
    with kms_server(tmp_path / "kms", principals=(plugin,)) as running:
        yield running


def admin(server: KMSServer, operation: str, *args: object) -> Any:
    async def run() -> Any:
        backend = await open_backend(
            BackendConfig(
                provider="aws",
                endpoint=server.endpoint,
                region=REGION,
                credentials_file=server.credentials_file("admin"),
            )
        )
        try:
            return await getattr(backend, operation)(*args)
        finally:
            await backend.close()

    return asyncio.run(run())


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f}s waiting for {what}"
        time.sleep(0.2)  # polling interval of a condition with a deadline


def test_secrets_encrypted_through_the_aws_wire(
    server: KMSServer, tmp_path: Path, control_plane_factory: Callable[..., ControlPlane]
) -> None:
    key_id = admin(server, "create_key", ALIAS).key_id
    backend = {
        "provider": "aws",
        "endpoint": server.endpoint,
        "region": REGION,
        "credentials_file": str(server.credentials_file("plugin")),
    }
    plugin = PluginProcess(tmp_path / "plugin", {"backend": backend, "key": ALIAS, "poll_interval": "1s"})
    plugin.start()
    try:
        plane = control_plane_factory(encryption_config=encryption_config(plugin.socket))
        api = client.CoreV1Api(config.new_client_from_config(config_file=str(plane.kubeconfig)))
        namespace = f"aws-{uuid.uuid4().hex[:8]}"
        api.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
        marker = f"secret-{uuid.uuid4().hex}"

        def write(name: str) -> encrypted_object.EncryptedObject:
            secret = client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data={"token": marker})
            api.create_namespaced_secret(namespace, secret)
            stored = plane.etcd_get(f"/registry/secrets/{namespace}/{name}")
            assert stored is not None and marker.encode() not in stored
            return encrypted_object.parse(stored)

        first = write("before-rotation")
        assert (first.provider, first.key_id) == ("kubekms-aws", f"{key_id}:v1")

        admin(server, "rotate_key", ALIAS)
        wait_for(lambda: plugin.status().get("key_id") == f"{key_id}:v2", 30, "the plugin's key_id v2")
        # kube-apiserver picks the new key_id up from Status; a write then carries it
        deadline = time.monotonic() + 120
        index = 0
        while (second := write(f"after-rotation-{index}")).key_id != f"{key_id}:v2":
            assert time.monotonic() < deadline, "kube-apiserver never wrote with the rotated key_id"
            index += 1
            time.sleep(1.0)  # polling interval: apiserver re-reads Status on its own schedule

        for name in ("before-rotation", f"after-rotation-{index}"):
            read = api.read_namespaced_secret(name, namespace)
            assert base64.b64decode(read.data["token"]).decode() == marker
        assert second.key_id != first.key_id
    finally:
        plugin.stop()
