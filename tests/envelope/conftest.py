"""One real ``kubekms server`` for the envelope tests, and a backend config per provider on it.

Providers: ``local`` (a keystore in-process), ``kubekms`` (the server's v1.0 wire), ``huaweicloud``
(the same wire, through the Huawei client settings, in a project of its own), ``aws`` (the
server's AWS KMS wire), ``gcp`` (the server's Cloud KMS gRPC wire, a key ring of its own). Keys
are made fresh per test with ``envelope_fixtures.new_key``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from envelope_fixtures import HUAWEI_PROJECT, aws_config

from kubekms.devenv.gcpserver import GcpServer, gcp_server
from kubekms.devenv.kmsserver import KMSServer
from kubekms.providers import BackendConfig


@pytest.fixture(scope="session")
def envelope_gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    """One server for every wire: its Cloud KMS listener on too."""
    with gcp_server(tmp_path_factory.mktemp("envelope-kms"), project_id="default") as running:
        yield running


@pytest.fixture(scope="session")
def envelope_server(envelope_gcp: GcpServer) -> KMSServer:
    return envelope_gcp.server


@pytest.fixture(scope="session")
def configs(
    envelope_gcp: GcpServer, envelope_server: KMSServer, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, BackendConfig]:
    credentials = envelope_server.credentials_file("admin")
    return {
        "local": BackendConfig(provider="local", state_dir=tmp_path_factory.mktemp("envelope-local"), init=True),
        "kubekms": envelope_server.backend_config(),
        "huaweicloud": BackendConfig(
            provider="huaweicloud",
            endpoint=envelope_server.endpoint,
            project_id=HUAWEI_PROJECT,
            credentials_file=credentials,
        ),
        "aws": aws_config(envelope_server),
        "gcp": envelope_gcp.backend_config(key_ring="envelope"),
    }
