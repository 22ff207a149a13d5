"""The plugin called by a real kube-apiserver: every Secret in etcd is encrypted with the backend's keys."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from kubekms.devenv import encrypted_object
from kubekms.devenv.controlplane import ControlPlane, encryption_config
from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server
from kubekms.devenv.plugin import PluginProcess, kms_provider
from kubekms.devenv.processes import wait_for
from kubekms_plugin import BACKEND_ACTIONS

pytestmark = pytest.mark.e2e

KEY = "cluster/e2e"
PLAINTEXT = "e2e-plaintext-7c1d"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[KMSServer]:
    plugin_principal = Principal(
        name="plugin",
        actions=BACKEND_ACTIONS,
        keys=(KEY,),
    )
    with kms_server(tmp_path / "kms", principals=[plugin_principal]) as running:
        running.call("create_key", KEY)
        yield running


@pytest.fixture(params=["kubekms", "aws"])
def plugin(request: pytest.FixtureRequest, server: KMSServer, tmp_path: Path) -> Iterator[PluginProcess]:
    backend = {"endpoint": server.endpoint, "credentials_file": str(server.credentials_file("plugin"))}
    if request.param == "aws":  # the same server's AWS KMS wire (its account: the project "default")
        backend |= {"provider": "aws", "region": "eu-west-1"}
    else:
        backend |= {"provider": "kubekms", "project_id": server.project_id}
    settings = {
        "backend": backend,
        "key": KEY,
        "poll_interval": "1s",
    }
    process = PluginProcess(tmp_path / "plugin", settings)
    process.start()
    yield process
    process.stop()


def core(plane: ControlPlane) -> client.CoreV1Api:
    return client.CoreV1Api(config.new_client_from_config(config_file=str(plane.kubeconfig)))


def stored(plane: ControlPlane, name: str) -> bytes:
    return plane.etcd_get(f"/registry/secrets/default/{name}") or b""


def create_secret(plane: ControlPlane, name: str) -> None:
    core(plane).create_namespaced_secret("default", {"metadata": {"name": name}, "stringData": {"v": PLAINTEXT}})


def read_secret(plane: ControlPlane, name: str) -> str:
    return base64.b64decode(core(plane).read_namespaced_secret(name, "default").data["v"]).decode()


def test_secrets_are_encrypted_with_the_backend_key_through_restarts_rotation_and_outage(
    server: KMSServer, plugin: PluginProcess, control_plane_factory: Callable[..., ControlPlane]
) -> None:
    key_id = server.call("describe_key", KEY).key_id
    plane = control_plane_factory(encryption_config=encryption_config(kms_provider(plugin.endpoint)))

    create_secret(plane, "first")
    raw = stored(plane, "first")
    assert raw.startswith(b"k8s:enc:kms:v2:kubekms:")
    assert PLAINTEXT.encode() not in raw
    assert encrypted_object.parse(raw).key_id == f"{key_id}:v1"
    assert set(encrypted_object.parse(raw).annotations) == {"kek.kubekms.io"}
    assert read_secret(plane, "first") == PLAINTEXT

    # Cold caches on both sides: the apiserver's DEKs and the plugin's KEKs.
    plugin.stop()
    plugin.start()
    plane.restart_apiserver()
    assert read_secret(plane, "first") == PLAINTEXT

    # Rotation by anyone (here the admin's CLI-equivalent call) reaches the apiserver by itself.
    server.call("rotate_key", KEY)
    wait_for(lambda: plugin.status()["key_id"] == f"{key_id}:v2", 30, "the plugin to report v2")

    def written_under_v2() -> bool:
        name = f"after-rotation-{time.monotonic_ns()}"
        create_secret(plane, name)
        return encrypted_object.parse(stored(plane, name)).key_id == f"{key_id}:v2"

    wait_for(written_under_v2, 150, "new writes under key version 2 (the apiserver polls Status every minute)")
    assert encrypted_object.parse(stored(plane, "first")).key_id == f"{key_id}:v1"
    assert read_secret(plane, "first") == PLAINTEXT

    # Backend outage: the plugin's cached KEK keeps reads and writes going.
    server.stop()
    create_secret(plane, "during-outage")
    assert read_secret(plane, "during-outage") == PLAINTEXT
    assert read_secret(plane, "first") == PLAINTEXT
    server.start()
    assert read_secret(plane, "during-outage") == PLAINTEXT
    plugin.stop()
    plugin.start()
    plane.restart_apiserver()
    for name in ("first", "during-outage"):
        assert read_secret(plane, name) == PLAINTEXT

    # /readyz reflects the plugin's health.
    plugin.stop()
    wait_for(lambda: plane.api_get("/readyz/kms-providers")[0] != 200, 90, "readyz to fail without the plugin")
    plugin.start()
    wait_for(lambda: plane.api_get("/readyz/kms-providers")[0] == 200, 90, "readyz to recover with the plugin")
