"""The provider contract suite: the same tests against every provider of the backend protocol.

``local`` runs the keystore in-process; ``kubekms`` talks HTTP to a real ``kubekms server``
process on loopback (one per module), each test in a project of its own so tests never see
each other's keys; ``huaweicloud`` is the cloud's provider pointed at that same server (the
same v1.0 wire). Add a provider by adding an opener to ``OPENERS``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from aws_targets import aws_contract_server, contract_moto, open_on_kubekms_server, open_on_moto  # noqa: F401
from gcp_targets import gcp_contract_server, open_on_gcp_server  # noqa: F401

from kubekms.backend import Backend
from kubekms.devenv.kmsserver import KMSServer, kms_server
from kubekms.providers import BackendConfig, open_backend

BackendFactory = Callable[..., Awaitable[Backend]]


class Openers:
    """Open a fresh, empty backend of one provider (``cmk_limit`` keys at most)."""

    def __init__(self, request: pytest.FixtureRequest, tmp_path: Path, stack: ExitStack) -> None:
        self._request = request
        self._tmp_path = tmp_path
        self._stack = stack

    async def local(self, cmk_limit: int) -> Backend:
        state_dir = self._tmp_path / f"keystore-{uuid.uuid4().hex[:8]}"
        return await open_backend(BackendConfig(provider="local", state_dir=state_dir, init=True, cmk_limit=cmk_limit))

    async def kubekms(self, cmk_limit: int, provider: str = "kubekms") -> Backend:
        if cmk_limit == DEFAULT_CMK_LIMIT:
            server: KMSServer = self._request.getfixturevalue("contract_server")
        else:  # the limit is the server's: start one just for this test
            state_dir = self._tmp_path / f"server-{uuid.uuid4().hex[:8]}"
            server = self._stack.enter_context(kms_server(state_dir, cmk_limit=cmk_limit))
        return await open_backend(
            BackendConfig(
                provider=provider,
                endpoint=server.endpoint,
                project_id=f"contract-{uuid.uuid4().hex[:12]}",  # a fresh tenant: an empty keystore
                credentials_file=server.credentials_file("admin"),
            )
        )

    async def huaweicloud(self, cmk_limit: int) -> Backend:
        """Provider ``huaweicloud`` (the cloud's code path: datakey_cipher_length, key states) on our server."""
        return await self.kubekms(cmk_limit, provider="huaweicloud")

    async def aws_kubekms(self, cmk_limit: int) -> Backend:
        return await open_on_kubekms_server(self._request, self._stack, self._tmp_path, cmk_limit, DEFAULT_CMK_LIMIT)

    async def aws_moto(self, cmk_limit: int) -> Backend:
        return await open_on_moto(self._request, cmk_limit, DEFAULT_CMK_LIMIT)

    async def gcp_kubekms(self, cmk_limit: int) -> Backend:
        """Provider ``gcp`` on our server's Cloud KMS API (Cloud KMS has no key limit: ``cmk_limit`` unused)."""
        return await open_on_gcp_server(self._request)


DEFAULT_CMK_LIMIT = 1000
PROVIDERS = ("local", "kubekms", "huaweicloud", "aws_kubekms", "aws_moto", "gcp_kubekms")


@pytest.fixture(scope="module")
def contract_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("contract-kms")) as server:
        yield server


@pytest.fixture(params=PROVIDERS)
async def backend_factory(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BackendFactory]:
    opened: list[Backend] = []
    with ExitStack() as stack:
        openers = Openers(request, tmp_path, stack)

        async def open_one(*, cmk_limit: int = DEFAULT_CMK_LIMIT) -> Backend:
            backend: Backend = await getattr(openers, request.param)(cmk_limit)
            opened.append(backend)
            return backend

        try:
            yield open_one
        finally:
            for backend in opened:
                await backend.close()


@pytest.fixture
async def backend(backend_factory: BackendFactory) -> Backend:
    return await backend_factory()


@pytest.fixture
def alias() -> Callable[[str], str]:
    """Unique aliases, so a failure names the test that made the key."""

    def make(prefix: str = "key") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    return make
