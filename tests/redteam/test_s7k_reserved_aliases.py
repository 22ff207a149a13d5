"""``alias/aws/`` names on the AWS wire could be planted through the other wires.

The AWS wire refuses ``CreateAlias alias/aws/...`` (AWS reserves it for AWS managed keys:
NotAuthorizedException). The keystore stores that alias as ``aws/...``, and the v1.0 wire (so a KMSKey's
``spec.aliases`` through the operator, the CLI's ``key create``, the console) made ``aws/s3`` freely:
on the AWS wire it is then ``alias/aws/s3`` of an ordinary customer key. An AWS application pointed at
the server that encrypts under the managed-key alias of its service (``alias/aws/s3``,
``alias/aws/secretsmanager``...) encrypts under the planter's key. ``gcp/`` got the same treatment for
the Cloud KMS API (one keystore rule, every wire). Expected: ``aws/`` refused on every wire as on the AWS
wire; nothing made.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kubekms.devenv.kmsserver import KMSServer, kms_server
from kubekms.errors import KMSError


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("s7k-aliases")) as running:
        yield running


@pytest.mark.parametrize("alias", ["aws/s3", "aws/secretsmanager"])
def test_the_v1_wire_refuses_what_the_aws_wire_reserves(server: KMSServer, alias: str) -> None:
    with pytest.raises(KMSError, match="reserved"):
        server.call("create_key", alias)
    key_id = server.call("create_key", f"s7k-{alias.replace('/', '-')}").key_id
    with pytest.raises(KMSError, match="reserved"):
        server.call("create_alias", key_id, alias)
    names = [entry["AliasName"] for entry in server.aws_client().list_aliases()["Aliases"]]
    assert f"alias/{alias}" not in names
