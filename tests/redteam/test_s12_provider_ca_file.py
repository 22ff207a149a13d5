"""A ``ca_file`` that cannot be loaded is a configuration error when the backend opens, in every provider.

The REST providers refused it so (tests/providers/test_rest_client.py). Provider ``gcp`` read
the file with ``read_bytes``: a missing file or a directory escaped as a bare OSError (no
KMSError: a traceback in the operator, the plugin and the CLI). Provider ``aws`` handed the path
to botocore unchecked and opened; every call then failed, retried as a connection problem, as
"Unavailable: AWS KMS <operation>: SSLError", naming no CA file. Nothing is connected to here:
the refusal comes before any request.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kubekms.credentials import Credentials
from kubekms.errors import InvalidArgument
from kubekms.providers import BackendConfig, open_backend


def _service_account_file(directory: Path) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    info = {
        "type": "service_account",
        "project_id": "p1",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "kms@p1.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    path = directory / "sa.json"
    path.write_text(json.dumps(info))
    return path


@pytest.mark.parametrize("provider", ["kubekms", "aws", "gcp"])
@pytest.mark.parametrize("bundle", ["missing", "directory", "not-pem"])
async def test_an_unloadable_ca_file_is_refused_when_the_backend_opens(
    tmp_path: Path, provider: str, bundle: str
) -> None:
    ca_file = {"missing": tmp_path / "missing.pem", "directory": tmp_path, "not-pem": tmp_path / "ca.pem"}[bundle]
    if bundle == "not-pem":
        ca_file.write_text("this is not a certificate\n")
    config = BackendConfig(
        provider=provider,
        endpoint="https://127.0.0.1:1",
        project_id="p1",
        region="eu-west-1",
        key_ring="ring",
        credentials=None if provider == "gcp" else Credentials("AKTEST", "sk-test"),
        credentials_file=_service_account_file(tmp_path) if provider == "gcp" else None,
        ca_file=ca_file,
    )
    with pytest.raises(InvalidArgument, match="CA bundle"):
        backend = await open_backend(config)
        await backend.close()
