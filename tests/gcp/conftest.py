"""One real kubekms server with its Cloud KMS listener per test module, and official clients on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gcp_harness import APP, LOCATION, PROJECT, READER, STRANGER, client
from google.cloud import kms_v1

from kubekms.devenv.gcpserver import GcpServer, gcp_server


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with gcp_server(
        tmp_path_factory.mktemp("kms-gcp"),
        principals=(APP, READER, STRANGER),
        project_id=PROJECT,
        maintenance_interval=0.2,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def admin(gcp: GcpServer) -> kms_v1.KeyManagementServiceClient:
    return client(gcp, "admin")


@pytest.fixture(scope="module")
def shared_ring(admin: kms_v1.KeyManagementServiceClient) -> kms_v1.KeyRing:
    return admin.create_key_ring(request={"parent": LOCATION, "key_ring_id": "shared", "key_ring": {}})
