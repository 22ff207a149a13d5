"""A real ``kubekms server`` process per test module, and real Huawei SDK clients pointed at it."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator

import pytest
import yaml
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkkms.v2 import KmsClient

from kubekms.devenv.kmsserver import KMSServer, kms_server

SdkClientFactory = Callable[..., KmsClient]


def make_sdk_client(server: KMSServer, principal: str = "admin", project_id: str | None = None) -> KmsClient:
    credentials = yaml.safe_load(server.credentials_file(principal).read_text())
    return (
        KmsClient.new_builder()
        .with_credentials(
            BasicCredentials(credentials["access_key"], credentials["secret_key"], project_id or server.project_id)
        )
        .with_endpoint(server.endpoint)
        .build()
    )


@pytest.fixture(scope="session")
def sdk_client() -> SdkClientFactory:
    """``sdk_client(server, principal="admin", project_id=None)``: a real KmsClient as that principal."""
    return make_sdk_client


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("kms"), project_id="proj1") as running:
        yield running


@pytest.fixture(scope="module")
def client(server: KMSServer) -> KmsClient:
    return make_sdk_client(server)


_NAMES = itertools.count()  # one per process: a per-test counter's id() is reused once it is freed


@pytest.fixture
def unique() -> Callable[[str], str]:
    def make(prefix: str) -> str:
        return f"{prefix}-{os.getpid()}-{next(_NAMES)}"

    return make
