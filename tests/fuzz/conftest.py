"""One real ``kubekms server`` per fuzz module, its fixture key, and a raw connection to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fuzz_checks import FUZZER, PROJECT, prepare_target
from fuzz_http import Connection
from fuzz_requests import Target

from kubekms.devenv.kmsserver import KMSServer, kms_server


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("kms-fuzz"), principals=(FUZZER,), project_id=PROJECT) as server:
        yield server


@pytest.fixture(scope="module")
def target(fuzz_server: KMSServer) -> Target:
    return prepare_target(fuzz_server)


@pytest.fixture(scope="module")
def connection(target: Target) -> Iterator[Connection]:
    conn = Connection(target.host, target.port)
    yield conn
    conn.close()
