"""deploy/kind: the node bootstrap run for real, the node's server started from its state, the files agreeing.

kind itself needs Docker, which this environment does not have: what runs here is the
bootstrap script, the kubekms server on the state it made, the plugin's and the server's
config loaders on the shipped files, and the static pod through the real kube-apiserver.
"""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
import yaml
from chart_support import REPO_ROOT, ApiServer
from kubernetes import config

from kubekms.devenv.controlplane import ControlPlane
from kubekms.devenv.plugin import PluginProcess
from kubekms.devenv.processes import ManagedProcess, free_port, wait_for
from kubekms.errors import AccessDenied
from kubekms.providers import BackendConfig, open_backend
from kubekms.server.config import ServerConfig
from kubekms.server.principals import load_principals
from kubekms_plugin import BACKEND_ACTIONS
from kubekms_plugin.config import load_config
from kubekms_plugin.v2 import api_pb2, api_pb2_grpc

KIND = REPO_ROOT / "deploy" / "kind"
NODE = KIND / "node"
CLUSTER_KEY = "kubekms/cluster-secrets"


def bootstrap(state: Path, scratch: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, KUBEKMS_NODE_STATE=str(state), TMPDIR=str(scratch))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # python3 and kubekms of this venv
    return subprocess.run(["/bin/sh", str(NODE / "bootstrap.sh")], env=env, capture_output=True, text=True, timeout=60)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_bootstrap_makes_private_state_once(tmp_path: Path) -> None:
    state = tmp_path / "node"
    first = bootstrap(state, tmp_path)
    assert first.returncode == 0, first.stderr
    principals = state / "principals.yaml"
    assert mode(principals) == 0o600
    assert {mode(path) for path in (state / "credentials").iterdir()} == {0o600}
    directory = load_principals(principals)  # refuses the file unless 0600
    plugin_keys = yaml.safe_load((state / "credentials" / "plugin.yaml").read_text())
    plugin = directory.get(plugin_keys["access_key"])
    assert plugin is not None and plugin.name == "plugin"
    assert plugin.actions == frozenset(BACKEND_ACTIONS) and plugin.keys == frozenset({CLUSTER_KEY})
    key_id = describe_local(state)
    assert key_id

    before = principals.read_bytes()
    second = bootstrap(state, tmp_path)
    assert second.returncode == 0, second.stderr
    assert principals.read_bytes() == before  # same principals, same key
    assert describe_local(state) == key_id


def describe_local(state: Path) -> str:
    async def describe() -> str:
        backend = await open_backend(BackendConfig(provider="local", state_dir=state / "state" / "default"))
        try:
            return (await backend.describe_key(CLUSTER_KEY)).key_id
        finally:
            await backend.close()

    return asyncio.run(describe())


def test_node_server_serves_the_bootstrapped_keystore_to_the_plugin_principal(tmp_path: Path) -> None:
    state = tmp_path / "node"
    assert bootstrap(state, tmp_path).returncode == 0
    shipped = yaml.safe_load((NODE / "server.yaml").read_text())
    port = free_port()
    relocated = {
        **shipped,
        "listen": f"127.0.0.1:{port}",
        "state_dir": str(state / "state"),
        "principals_file": str(state / "principals.yaml"),
        "audit_log": str(state / "audit.log"),
    }
    config_path = tmp_path / "server.yaml"
    config_path.write_text(yaml.safe_dump(relocated))
    assert ServerConfig.load(NODE / "server.yaml").cmk_limit == relocated["cmk_limit"]  # the shipped file loads
    # Without --init, as in the static pod: the server must open what the bootstrap made.
    server = ManagedProcess(
        "kubekms server", [sys.executable, "-m", "kubekms.cli.main", "server", "--config", str(config_path)],
        tmp_path / "server.log",
    )  # fmt: skip
    server.start()
    try:
        server.wait_until(lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).status == 200,
                          30, "the node server's /healthz")  # fmt: skip

        async def as_plugin() -> None:
            backend = await open_backend(
                BackendConfig(
                    provider="kubekms",
                    endpoint=f"http://127.0.0.1:{port}",
                    project_id="default",
                    credentials_file=state / "credentials" / "plugin.yaml",
                )
            )
            try:
                data_key = await backend.create_data_key(CLUSTER_KEY)
                assert len(data_key.plaintext or b"") == 32
                with pytest.raises(AccessDenied):
                    await backend.create_key("not-for-the-plugin")
            finally:
                await backend.close()

        asyncio.run(as_plugin())
        plugin_container_encrypts_through(tmp_path, state, port)
    finally:
        server.stop()


def plugin_container_encrypts_through(tmp_path: Path, state: Path, server_port: int) -> None:
    """The static pod's plugin container: the shipped plugin.yaml, its node paths moved under tmp_path."""
    shipped = yaml.safe_load((NODE / "plugin.yaml").read_text())
    node_server = yaml.safe_load((NODE / "server.yaml").read_text())
    assert shipped["backend"]["endpoint"] == f"http://127.0.0.1:{node_server['listen'].rsplit(':', 1)[1]}"
    assert shipped["backend"]["credentials_file"] == "/var/lib/kubekms/credentials/plugin.yaml"  # bootstrap.sh's
    settings = {name: value for name, value in shipped.items() if name not in ("socket", "health_address")}
    settings["backend"] = {
        **shipped["backend"],
        "endpoint": f"http://127.0.0.1:{server_port}",
        "credentials_file": str(state / "credentials" / "plugin.yaml"),
    }
    plugin = PluginProcess(tmp_path / "plugin", settings)
    plugin.start()
    try:
        assert mode(plugin.socket) == 0o600
        with grpc.insecure_channel(plugin.endpoint) as channel:
            kms = api_pb2_grpc.KeyManagementServiceStub(channel)
            status = kms.Status(api_pb2.StatusRequest(), timeout=10)
            assert (status.version, status.healthz) == ("v2", "ok")
            encrypted = kms.Encrypt(api_pb2.EncryptRequest(plaintext=b"a Secret", uid="write"), timeout=10)
            assert b"a Secret" not in encrypted.ciphertext and encrypted.key_id == status.key_id
            decrypted = kms.Decrypt(
                api_pb2.DecryptRequest(
                    ciphertext=encrypted.ciphertext, uid="read", key_id=encrypted.key_id,
                    annotations=encrypted.annotations,
                ),
                timeout=10,
            )  # fmt: skip
            assert decrypted.plaintext == b"a Secret"
    finally:
        plugin.stop()


def test_plugin_config_loads_and_matches_the_encryption_config(tmp_path: Path) -> None:
    credentials = tmp_path / "plugin.yaml"
    credentials.write_text("access_key: AK\nsecret_key: SK\n")
    credentials.chmod(0o600)
    plugin = load_config(NODE / "plugin.yaml", {"backend.credentials_file": str(credentials)})
    assert plugin.key == CLUSTER_KEY
    encryption = yaml.safe_load((NODE / "encryption-config.yaml").read_text())
    (kms,) = [p["kms"] for p in encryption["resources"][0]["providers"] if "kms" in p]
    assert kms["apiVersion"] == "v2" and kms["name"] == "kubekms"  # the chart's reencryption.kmsProviderName
    assert kms["endpoint"] == f"unix://{plugin.socket}"
    assert list(encryption["resources"][0]["providers"][-1]) == ["identity"]


def test_kind_config_wires_the_files_into_the_node_and_the_apiserver() -> None:
    kind = yaml.safe_load((KIND / "kind-config.yaml").read_text())
    (node,) = kind["nodes"]
    mounts = {mount["containerPath"]: mount["hostPath"] for mount in node["extraMounts"]}
    for container_path, host_path in mounts.items():
        assert (REPO_ROOT / host_path).exists(), f"{host_path} (mounted at {container_path}) is missing"
    assert mounts["/etc/kubernetes/manifests/kubekms.yaml"] == "./deploy/kind/node/kubekms-static-pod.yaml"
    cluster = yaml.safe_load(node["kubeadmConfigPatches"][0])["apiServer"]
    config_file = Path(cluster["extraArgs"]["encryption-provider-config"])
    assert (REPO_ROOT / mounts[str(config_file.parent)] / config_file.name).is_file()
    apiserver_mounts = {volume["mountPath"] for volume in cluster["extraVolumes"]}
    encryption = yaml.safe_load((NODE / "encryption-config.yaml").read_text())
    socket = Path(encryption["resources"][0]["providers"][0]["kms"]["endpoint"].removeprefix("unix://"))
    assert {str(config_file.parent), str(socket.parent)} <= apiserver_mounts
    pod = yaml.safe_load((NODE / "kubekms-static-pod.yaml").read_text())
    host_paths = {volume["hostPath"]["path"] for volume in pod["spec"]["volumes"] if "hostPath" in volume}
    assert {str(socket.parent), str(config_file.parent)} <= host_paths


@pytest.mark.e2e
def test_static_pod_passes_server_side_dry_run(control_plane: ControlPlane) -> None:
    cluster = ApiServer(config.new_client_from_config(config_file=str(control_plane.kubeconfig)))
    pod = yaml.safe_load((NODE / "kubekms-static-pod.yaml").read_text())
    echoed = cluster.create(pod, dry_run=True)
    assert echoed["metadata"]["namespace"] == "kube-system"
    assert [c["name"] for c in echoed["spec"]["containers"]] == ["server", "plugin"]


@pytest.mark.e2e
def test_apiserver_stays_live_but_not_ready_until_the_plugin_answers(
    tmp_path: Path, control_plane_factory: Callable[..., ControlPlane]
) -> None:
    """The kind flow relies on it: kube-apiserver starts before the static pod's plugin and must not be restarted
    by its liveness probe (/livez) meanwhile, while /readyz reports the missing KMS."""
    plane = control_plane_factory()
    shipped = (NODE / "encryption-config.yaml").read_text()
    missing_socket = tmp_path / "plugin-not-started.sock"
    plane.restart_apiserver(
        encryption_config=shipped.replace("/var/run/kubekms/plugin.sock", str(missing_socket)), wait_ready=False
    )

    # Live once its own start-up hooks are done, the plugin still absent; never a kms check in /livez.
    wait_for(lambda: plane.api_get("/livez")[0] == 200, 90, "kube-apiserver live without its KMS plugin")
    live_status, live_body = plane.api_get("/livez?verbose")
    assert live_status == 200 and "kms" not in live_body
    ready_status, ready_body = plane.api_get("/readyz?verbose")
    assert ready_status != 200 and "[-]kms-providers failed" in ready_body
