"""What the key type and key policy tests of the operator share: boto3 on the kubekms server's AWS wire."""

from __future__ import annotations

from typing import Any

from kubekms.devenv.kmsserver import KMSServer


def boto_kms(server: KMSServer) -> Any:
    """A boto3 KMS client of the server's admin principal (the account is the project "default")."""
    return server.aws_client(max_attempts=None)
