"""The chart's kubekms server started from exactly what the chart renders, without --init.

There is no kubelet here, so the StatefulSet's pod never runs in the test control plane.
Instead its parts run as local processes: the rendered Secrets and ConfigMap are written
where the pod mounts them (under a temporary root), the init container's script installs
the root key and principals, and `kubekms server` starts with the container's arguments.
The operator's credentials from the generated Secret must then work against it.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import stat
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from chart_support import FULL_VALUES, by_kind, one, render

from kubekms.backend import DataKey
from kubekms.devenv.processes import ManagedProcess, free_port, kubekms_argv
from kubekms.providers import BackendConfig, open_backend

PROJECT = FULL_VALUES["server"]["projectId"]


def secret_files(secret: dict[str, Any]) -> dict[str, bytes]:
    files = {key: base64.b64decode(value) for key, value in (secret.get("data") or {}).items()}
    files.update({key: value.encode() for key, value in (secret.get("stringData") or {}).items()})
    return files


def relocate(text: str, mounts: dict[str, Path]) -> str:
    """Every mount path in ``text`` moved under its local directory, in one pass (a local path is never re-moved)."""
    alternatives = "|".join(re.escape(path) for path in sorted(mounts, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w/.-])({alternatives})(?![\w.-])")
    return pattern.sub(lambda match: str(mounts[match.group(1)]), text)


def test_server_starts_from_the_charts_secrets_and_config(tmp_path: Path) -> None:
    objects = render(tmp_path, FULL_VALUES, release="srv", namespace="kms")
    secrets = {secret["metadata"]["name"]: secret_files(secret) for secret in by_kind(objects, "Secret")}
    statefulset = one(objects, "StatefulSet")
    pod = statefulset["spec"]["template"]["spec"]
    claims = {
        claim["metadata"]["name"]: {"persistentVolumeClaim": claim}
        for claim in statefulset["spec"]["volumeClaimTemplates"]
    }
    volumes = {volume["name"]: volume for volume in pod["volumes"]} | claims  # the PVC: an empty directory here
    (init,) = pod["initContainers"]
    (server_container,) = pod["containers"]

    # Every mount of both containers becomes a directory under tmp_path, filled like the kubelet would.
    all_mounts = init["volumeMounts"] + server_container["volumeMounts"]
    mounts = {mount["mountPath"]: tmp_path / "pod" / mount["name"] for mount in all_mounts}
    config_maps = {config_map["metadata"]["name"]: config_map for config_map in by_kind(objects, "ConfigMap")}
    for mount in all_mounts:
        directory = mounts[mount["mountPath"]]
        directory.mkdir(parents=True, exist_ok=True)
        volume = volumes[mount["name"]]
        if "secret" in volume:
            for item in volume["secret"]["items"]:
                (directory / item["path"]).write_bytes(secrets[volume["secret"]["secretName"]][item["key"]])
        if "configMap" in volume:
            for name, text in config_maps[volume["configMap"]["name"]]["data"].items():
                (directory / name).write_text(relocate(text, mounts))

    assert init["command"] == ["/bin/sh", "-c"]
    init_script = relocate(init["args"][0], mounts)

    def run_init_container() -> None:
        installed = subprocess.run(["/bin/sh", "-c", init_script], capture_output=True, text=True, timeout=30)
        assert installed.returncode == 0, installed.stderr

    run_init_container()
    root_key = mounts["/var/lib/kubekms"] / "state" / PROJECT / "root.key"
    principals = mounts["/run/kubekms"] / "principals.yaml"
    assert {stat.S_IMODE(path.stat().st_mode) for path in (root_key, principals)} == {0o600}
    assert len(root_key.read_bytes()) == 32

    config_path = mounts["/etc/kubekms"] / "server.yaml"
    port = free_port()
    settings = yaml.safe_load(config_path.read_text())
    assert settings["listen"] == "0.0.0.0:8443"
    config_path.write_text(yaml.safe_dump({**settings, "listen": f"127.0.0.1:{port}"}))  # a free loopback port
    args = [relocate(arg, mounts) for arg in server_container["args"]]
    assert args[0] == "server" and "--init" not in args
    server = ManagedProcess(
        "kubekms server (chart)", kubekms_argv(*args), tmp_path / "server.log",
        env={"PATH": os.environ["PATH"], "TMPDIR": str(mounts["/tmp"])},
    )  # fmt: skip

    def start_server() -> None:
        server.start()
        server.wait_until(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).status == 200,
            30, "the chart's server /healthz",
        )  # fmt: skip

    # The operator's view: the default KMSBackend and the Secret it points at.
    (backend_object,) = by_kind(objects, "KMSBackend")
    assert backend_object["spec"]["projectId"] == PROJECT
    reference = backend_object["spec"]["credentialsSecretRef"]
    credentials = secrets[reference["name"]]
    credentials_file = tmp_path / "operator.yaml"
    credentials_file.touch(mode=0o600)
    credentials_file.write_text(yaml.safe_dump({
        "access_key": credentials[reference["accessKeyKey"]].decode(),
        "secret_key": credentials[reference["secretKeyKey"]].decode(),
    }))  # fmt: skip
    backend_config = BackendConfig(
        provider="kubekms", endpoint=f"http://127.0.0.1:{port}", project_id=PROJECT, credentials_file=credentials_file
    )

    async def wrap_a_data_key() -> DataKey:
        backend = await open_backend(backend_config)
        try:
            key = await backend.create_key("chart/app", description="from the chart's server")
            return await backend.create_data_key(key.key_id)
        finally:
            await backend.close()

    async def unwrap(data_key: DataKey) -> bytes:
        backend = await open_backend(backend_config)
        try:
            return await backend.decrypt_data_key(data_key.key_id, data_key.ciphertext)
        finally:
            await backend.close()

    try:
        start_server()
        data_key = asyncio.run(wrap_a_data_key())
        assert data_key.plaintext is not None and len(data_key.plaintext) == 32
        assert asyncio.run(unwrap(data_key)) == data_key.plaintext
        # A pod restart: the init container runs again on the kept PVC, then the server opens the same keystore.
        server.stop()
        run_init_container()
        start_server()
        assert asyncio.run(unwrap(data_key)) == data_key.plaintext
    finally:
        server.stop()
