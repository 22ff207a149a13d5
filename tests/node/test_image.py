"""The kubekms image, built here by ``kubekms dev image``: every subcommand starts in it, as uid
65532 on a read-only root filesystem, and the server in it serves real requests without
writing key material to its output."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

import kubekms
from kubekms.devenv import image as image_module
from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import wait_for

pytestmark = pytest.mark.node

LOCKED = ("--read-only", "--cap-drop=ALL", "--security-opt=no-new-privileges")


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The build inputs staged once: other engineers' edits of the tree do not change them mid-module."""
    return image_module.stage_context(tmp_path_factory.mktemp("context"))


@pytest.fixture(scope="module")
def image(context: Path) -> str:
    return image_module.ensure_image(context=context).reference


def run(image: str, *arguments: str, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    argv = image_module.podman_run_argv(image, *arguments, options=(*LOCKED, *options))
    return subprocess.run(argv, capture_output=True, text=True, timeout=120)


def test_a_second_build_of_the_same_inputs_is_up_to_date_at_once(image: str, context: Path) -> None:
    started = time.monotonic()
    again = image_module.ensure_image(context=context)
    assert again.built is False
    assert again.reference == image
    assert time.monotonic() - started < 10


def test_runs_as_65532_on_a_read_only_root(image: str) -> None:
    identity = run(image, "-c", "id -u; id -g; echo $HOME", options=("--entrypoint", "/bin/sh"))
    assert identity.returncode == 0, identity.stderr
    assert identity.stdout.split() == ["65532", "65532", "/tmp"]
    write = run(image, "-c", "touch /opt/kubekms/x", options=("--entrypoint", "/bin/sh"))
    assert write.returncode != 0
    assert "Read-only file system" in write.stderr


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (("--version",), f"kubekms, version {kubekms.__version__}"),
        (("plugin", "--help"), "KMS v2"),
        (("operator", "--help"), "KMSKey"),
        (("server", "--help"), "--config"),
    ],
)
def test_each_subcommand_starts(image: str, arguments: tuple[str, ...], expected: str) -> None:
    result = run(image, *arguments)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout
    assert result.stderr == ""  # e.g. no warning about an unwritable cache or bytecode


@contextlib.contextmanager
def server_container(image: str, server: KMSServer, name: str) -> Iterator[None]:
    """The image's ``kubekms server`` on ``server``'s config, mounted at the same path (host network)."""
    subprocess.run(["chown", "-R", "65532:65532", str(server.state_dir)], check=True)
    started = subprocess.run(
        image_module.podman_argv(
            "run",
            "--detach",
            "--name",
            name,
            *image_module.ULIMITS,
            *LOCKED,
            "--network",
            "host",
            "--volume",
            f"{server.state_dir}:{server.state_dir}",
            image,
            "server",
            "--config",
            str(server.state_dir / "server.yaml"),
            "--init",
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 0, started.stderr
    try:
        yield
    finally:
        subprocess.run(image_module.podman_argv("rm", "--force", "--time", "5", name), capture_output=True, timeout=60)


def container_logs(name: str) -> str:
    logs = subprocess.run(image_module.podman_argv("logs", name), capture_output=True, text=True, timeout=60)
    return logs.stdout + logs.stderr


def test_the_server_serves_from_a_config_and_logs_no_key_material(image: str, tmp_path: Path) -> None:
    server = KMSServer(tmp_path / "kms")
    name = f"kubekms-image-test-{secrets.token_hex(4)}"
    with server_container(image, server, name):
        wait_for(server._healthy, 60, "the server in the container serving /healthz")
        key = server.call("create_key", "image-test")
        data_key = server.call("create_data_key", key.key_id)
        assert server.call("describe_key", key.key_id).key_id == key.key_id
        logs = container_logs(name)
    root_key = next((tmp_path / "kms" / "keystore").rglob("root.key")).read_bytes()
    assert os.stat(next((tmp_path / "kms" / "keystore").rglob("root.key"))).st_uid == 65532  # made by the container
    principals = yaml.safe_load((tmp_path / "kms" / "principals.yaml").read_text())
    assert data_key.plaintext is not None
    material = [data_key.plaintext, root_key]
    forbidden = [form for secret in material for form in (secret.hex(), secret.hex().upper(), base64.b64encode(secret))]
    forbidden += [principal["secret_key"] for principal in principals]
    output = logs + server.audit_log.read_text()
    for secret in forbidden:
        assert (secret if isinstance(secret, str) else secret.decode()) not in output
    structured = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert structured, logs  # the server logs JSON lines
