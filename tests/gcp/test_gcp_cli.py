"""The ``kubekms`` CLI with provider gcp on our server's Cloud KMS gRPC API, from a backend config file or KUBEKMS_*."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubekms.cli.backend_access import load_backend_config
from kubekms.devenv.gcpserver import GcpServer, gcp_server
from kubekms.errors import InvalidArgument

KUBEKMS = shutil.which("kubekms") or str(Path(__file__).parents[2] / ".venv" / "bin" / "kubekms")
PROJECT = "proj-cli"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with gcp_server(tmp_path_factory.mktemp("kms-gcp"), project_id=PROJECT) as running:
        yield running


def kubekms(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KUBEKMS_")} | (env or {})
    return subprocess.run([KUBEKMS, *args, "-o", "json"], capture_output=True, text=True, timeout=60, env=environment)


def ok(done: subprocess.CompletedProcess[str]) -> Any:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_cli_with_provider_gcp(server: GcpServer, tmp_path: Path) -> None:
    config = tmp_path / "gcp.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "provider": "gcp",
                "endpoint": f"http://{server.endpoint}",
                "project_id": PROJECT,
                "location": "global",
                "key_ring": "cli",
                "credentials_file": str(server.key_file()),
            }
        )
    )
    created = ok(kubekms("key", "create", "cli-key", "--description", "from the CLI", "--backend-config", str(config)))
    assert created["key_id"] == "cli-key" and created["state"] == "enabled"
    data_key = ok(kubekms("datakey", "create", "cli-key", "--aad", "ns=a", "--backend-config", str(config)))
    opened = ok(
        kubekms(
            "datakey",
            "decrypt",
            "cli-key",
            "--ciphertext",
            data_key["ciphertext"],
            "--aad",
            "ns=a",
            "--backend-config",
            str(config),
        )
    )
    assert data_key["plaintext"] in json.dumps(opened)

    env = {
        "KUBEKMS_PROVIDER": "gcp",
        "KUBEKMS_ENDPOINT": f"http://{server.endpoint}",
        "KUBEKMS_PROJECT_ID": PROJECT,
        "KUBEKMS_LOCATION": "global",
        "KUBEKMS_KEY_RING": "cli",
        "KUBEKMS_CREDENTIALS_FILE": str(server.key_file()),
    }
    assert ok(kubekms("key", "describe", "cli-key", env=env))["description"] == "from the CLI"

    other_ring = kubekms("key", "describe", "cli-key", env=env | {"KUBEKMS_KEY_RING": "elsewhere"})
    assert other_ring.returncode == 1 and "cli-key" in other_ring.stderr


def test_location_is_refused_for_other_providers() -> None:
    with pytest.raises(InvalidArgument, match=r"location is for provider gcp \(instead of region\); others take"):
        load_backend_config(None, {"KUBEKMS_PROVIDER": "aws", "KUBEKMS_LOCATION": "global"})
    gcp = load_backend_config(None, {"KUBEKMS_PROVIDER": "gcp", "KUBEKMS_LOCATION": "eu", "KUBEKMS_KEY_RING": "r"})
    assert (gcp.region, gcp.key_ring, gcp.endpoint) == ("eu", "r", "")


def test_unusable_credentials_are_one_line_not_a_traceback(server: GcpServer, tmp_path: Path) -> None:
    env = {"KUBEKMS_PROVIDER": "gcp", "KUBEKMS_ENDPOINT": f"http://{server.endpoint}", "KUBEKMS_PROJECT_ID": PROJECT,
           "KUBEKMS_KEY_RING": "cli", "HOME": str(tmp_path), "NO_GCE_CHECK": "True"}  # fmt: skip
    bad_key = tmp_path / "bad.json"
    bad_key.write_text('{"type": "service_account", "private_key": "not-a-pem-key"}')
    refused = kubekms("key", "list", env=env | {"KUBEKMS_CREDENTIALS_FILE": str(bad_key)})
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert f"{bad_key} is not a usable service-account key" in refused.stderr and "not-a-pem-key" not in refused.stderr

    no_adc = kubekms("key", "list", env=env)  # no key file, no ADC (empty HOME, not on Google Cloud)
    assert no_adc.returncode == 1 and "Traceback" not in no_adc.stderr
    assert "no credentials file, and Application Default Credentials are not usable" in no_adc.stderr
