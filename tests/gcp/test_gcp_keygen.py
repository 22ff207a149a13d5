"""``python -m kubekms.server.gcp_keygen``: a key file the official credentials load, an entry the server accepts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from google.oauth2 import service_account

from kubekms.server.gcp_auth import JwtVerifier
from kubekms.server.principals import parse_principals

EMAIL = "ops@proj-gcp.iam.gserviceaccount.com"


def test_keygen_writes_a_private_key_file_and_prints_the_principal_entry(tmp_path: Path) -> None:
    key_file = tmp_path / "ops.json"
    argv = [sys.executable, "-m", "kubekms.server.gcp_keygen", EMAIL, "proj-gcp", str(key_file)]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert "PRIVATE KEY" not in done.stdout and "PRIVATE KEY" in key_file.read_text()
    credentials = service_account.Credentials.from_service_account_file(str(key_file))
    assert credentials.service_account_email == EMAIL
    entry = {"name": "ops", "access_key": "AKOPS", "secret_key": "sk", **yaml.safe_load(done.stdout)}
    directory = parse_principals([entry], source="test")
    assert len(JwtVerifier(directory)) == 1
    first = key_file.read_bytes()
    again = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    assert again.returncode == 1 and "exists" in again.stderr
    assert key_file.read_bytes() == first  # not overwritten


def test_keygen_writes_the_servers_token_uri_when_given(tmp_path: Path) -> None:
    key_file = tmp_path / "ops.json"
    token_uri = "https://kms.internal:9444/token"
    argv = [sys.executable, "-m", "kubekms.server.gcp_keygen", EMAIL, "proj-gcp", str(key_file), token_uri]
    subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(key_file.read_text())["token_uri"] == token_uri
    bad = subprocess.run([*argv[:-2], str(tmp_path / "other.json"), "kms.internal/token"], capture_output=True,
                         text=True, check=False, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and not (tmp_path / "other.json").exists()
