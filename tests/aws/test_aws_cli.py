"""The ``kubekms`` CLI with provider ``aws`` on our server's AWS endpoint; the key then seen on the v1.0 wire."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubekms.devenv.kmsserver import KMSServer, kms_server

KUBEKMS = shutil.which("kubekms") or str(Path(__file__).parents[2] / ".venv" / "bin" / "kubekms")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("kms")) as running:
        yield running


def backend_config(tmp_path: Path, server: KMSServer, **fields: Any) -> Path:
    path = tmp_path / f"{fields['provider']}.yaml"
    credentials = str(server.credentials_file("admin"))
    path.write_text(yaml.safe_dump({"endpoint": server.endpoint, "credentials_file": credentials, **fields}))
    return path


def kubekms(config: Path, *args: str) -> Any:
    done = subprocess.run(
        [KUBEKMS, *args, "--backend-config", str(config), "-o", "json"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_cli_on_the_aws_wire(server: KMSServer, tmp_path: Path) -> None:
    aws = backend_config(tmp_path, server, provider="aws", region="eu-west-1")
    created = kubekms(aws, "key", "create", "cli-aws-key", "--description", "from the CLI")
    assert created["alias"] == "cli-aws-key" and created["state"] == "enabled"
    data_key = kubekms(aws, "datakey", "create", "cli-aws-key", "--aad", "ns=a")
    assert data_key["key_id"] == created["key_id"] and data_key["key_version"] == 1
    opened = kubekms(aws, "datakey", "decrypt", "cli-aws-key", "--ciphertext", data_key["ciphertext"], "--aad", "ns=a")
    assert data_key["plaintext"] in json.dumps(opened)

    # the same key through provider kubekms on the v1.0 wire (the AWS account is project "default")
    v1 = backend_config(tmp_path, server, provider="kubekms", project_id="default")
    described = kubekms(v1, "key", "describe", "cli-aws-key")
    assert described["key_id"] == created["key_id"] and described["description"] == "from the CLI"
