"""One real ``kubekms server`` per fuzz module, its fixture key, and a raw connection to it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fuzz_http import Connection
from fuzz_requests import Target

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server
from kubekms.providers import BackendConfig, open_backend

PROJECT = "fuzz"
ALIAS = "fuzz-fixture"
# the AWS wire's account is the principal's project when it has exactly one: both wires then see one keystore
FUZZER = Principal("fuzzer", projects=(PROJECT,))


def prepare_target(server: KMSServer) -> Target:
    """The fixture key (alias, tag fuzz=yes) and a data key under it, made through the real client."""

    async def prepare() -> tuple[str, bytes]:
        config = BackendConfig(
            provider="kubekms",
            endpoint=server.endpoint,
            project_id=PROJECT,
            credentials_file=server.credentials_file(FUZZER.name),
        )
        backend = await open_backend(config)
        try:
            key = await backend.create_key(ALIAS, description="fuzz fixture", tags={"fuzz": "yes"})
            data_key = await backend.create_data_key(key.key_id, length=32)
            return key.key_id, data_key.ciphertext
        finally:
            await backend.close()

    key_id, ciphertext = asyncio.run(prepare())
    credentials = yaml.safe_load(server.credentials_file(FUZZER.name).read_text())
    return Target(
        host="127.0.0.1",
        port=server.port,
        project_id=PROJECT,
        access_key=credentials["access_key"],
        secret_key=credentials["secret_key"],
        key_id=key_id,
        alias=ALIAS,
        ciphertext=ciphertext,
    )


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


def server_log(server: KMSServer) -> str:
    return Path(server.log).read_text(errors="replace")
