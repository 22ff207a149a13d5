"""A Cloud KMS key version's keystore alias (``gcp/<location>/<ring>/<key>/<version>``) cannot be re-pointed
through the AWS wire (UpdateAlias: NotAuthorizedException, as AWS answers for ``alias/aws/``), while the Cloud
KMS API itself still makes these aliases (h5-findings #15 follow-up)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import botocore.exceptions
import pytest

from kubekms.devenv.gcpserver import GcpServer, gcp_server
from kubekms.devenv.kmsserver import Principal
from kubekms.providers import open_backend


async def _crypto_key(gcp: GcpServer) -> str:
    backend = await open_backend(gcp.backend_config())
    try:
        return (await backend.create_key("k")).key_id
    finally:
        await backend.close()


def test_a_version_alias_cannot_be_repointed(tmp_path: Path) -> None:
    owner = Principal("owner", projects=("proj-s6c",))  # its AWS account is the project
    with gcp_server(tmp_path / "kms", principals=(owner,), project_id="proj-s6c") as gcp:
        asyncio.run(_crypto_key(gcp))
        kms = gcp.server.aws_client("owner", region="us-east-1", max_attempts=None)
        version_alias = "alias/gcp/global/kubekms/k/1"
        version_key = kms.describe_key(KeyId=version_alias)["KeyMetadata"]["KeyId"]
        other = kms.create_key()["KeyMetadata"]["KeyId"]
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            kms.update_alias(AliasName=version_alias, TargetKeyId=other)
        assert refused.value.response["Error"]["Code"] == "NotAuthorizedException"
        assert kms.describe_key(KeyId=version_alias)["KeyMetadata"]["KeyId"] == version_key
