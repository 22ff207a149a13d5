"""The plugin's config file with provider gcp, read through the shared YAML loader (kubekms.yamlfile)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubekms.devenv.processes import free_port, kubekms_argv
from kubekms_plugin.config import ConfigError, load_config

GCP = {"provider": "gcp", "project_id": "my-project", "location": "europe-west1", "key_ring": "cluster-ring"}


def write(tmp_path: Path, backend: dict[str, Any]) -> Path:
    path = tmp_path / "plugin.yaml"
    path.write_text(yaml.safe_dump({"socket": "/run/kubekms/kms.sock", "key": "etcd", "backend": backend}))
    return path


def test_a_gcp_backend_names_its_key_ring(tmp_path: Path) -> None:
    key_file = tmp_path / "key.json"
    key_file.write_text("{}")
    config = load_config(write(tmp_path, {**GCP, "credentials_file": str(key_file)}), {})
    backend = config.backend
    assert (backend.provider, backend.project_id, backend.region, backend.key_ring) == (
        "gcp",
        "my-project",
        "europe-west1",
        "cluster-ring",
    )
    assert backend.credentials_file == key_file and backend.endpoint == ""  # Google's endpoint


def test_without_location_it_is_global_and_without_a_key_file_adc(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, {k: v for k, v in GCP.items() if k != "location"}), {})
    assert config.backend.region == "global" and config.backend.credentials_file is None


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ({**GCP, "project_id": None}, "backend.project_id: required for provider gcp"),
        ({**GCP, "key_ring": None}, "backend.key_ring: required for provider gcp"),
        ({**GCP, "key_ring": "a/b"}, r"a Cloud KMS key ring id \(\[a-zA-Z0-9_-\]\{1,63\}\), got 'a/b'"),
        ({**GCP, "location": "Europe West"}, "backend.location: a Cloud KMS location"),
        ({**GCP, "region": "eu-west-1"}, "provider gcp takes location"),
        ({"provider": "aws", "key_ring": "ring"}, "backend.key_ring: for provider gcp only"),
        ({**GCP, "credentials_file": "/nonexistent/key.json"}, "not a readable file"),
    ],
)
def test_bad_gcp_settings_are_refused_precisely(tmp_path: Path, backend: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, {k: v for k, v in backend.items() if v is not None}), {})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("socket: [", "config file .* is not valid YAML"),
        ("- a list", "config file .* must be a mapping of plugin settings"),
        (None, "cannot read config file .*: No such file"),
    ],
)
def test_the_file_itself_is_refused_with_the_shared_loaders_errors(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "plugin.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_config(path, {})


def test_a_key_file_that_is_no_service_account_key_stops_the_plugin_with_one_line(tmp_path: Path) -> None:
    key_file = tmp_path / "key.json"
    key_file.write_text('{"type": "service_account", "private_key": "not-a-pem-key"}')
    config = {
        "socket": str(tmp_path / "plugin.sock"),
        "key": "etcd",
        "health_address": f"127.0.0.1:{free_port()}",
        "backend": {**GCP, "endpoint": "http://127.0.0.1:1", "credentials_file": str(key_file)},
    }
    (tmp_path / "plugin.yaml").write_text(yaml.safe_dump(config))
    done = subprocess.run(kubekms_argv("plugin", "--config", str(tmp_path / "plugin.yaml")),
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    line = json.loads(done.stderr.strip().splitlines()[-1])
    assert line["message"] == "cannot start" and "is not a usable service-account key JSON" in line["error"]
    assert "not-a-pem-key" not in done.stderr and not (tmp_path / "plugin.sock").exists()
