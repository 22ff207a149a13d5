"""What the key type and key policy tests of the operator share: boto3 on the kubekms server's AWS wire."""

from __future__ import annotations

from typing import Any

import boto3
import yaml

from kubekms.devenv.kmsserver import KMSServer


def boto_kms(server: KMSServer) -> Any:
    """A boto3 KMS client of the server's admin principal (the account is the project "default")."""
    credentials = yaml.safe_load(server.credentials_file("admin").read_text())
    return boto3.client(
        "kms",
        endpoint_url=server.endpoint,
        region_name="eu-west-1",
        aws_access_key_id=credentials["access_key"],
        aws_secret_access_key=credentials["secret_key"],
    )
