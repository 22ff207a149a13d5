"""A backend that never answers holds only its own KMSKeys: a new KMSKey of another backend is Ready at once.

The operator is a real subprocess. The hung backend is a TCP server that accepts connections and
never answers (what a blackholed or wedged KMS looks like to a client): each call on it waits for
the client's request timeout (30 s). With more of its KMSKeys than the operator handles at once,
a KMSKey of a healthy backend created meanwhile must not wait for them.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator

import pytest
from operator_support import Cluster, operator_running

from kubekms.devenv.controlplane import ControlPlane
from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import ManagedProcess, free_port, wait_for

pytestmark = pytest.mark.e2e
NAMESPACE_PREFIX = "hung-"
HUNG_KEYS = 80  # more than the operator handles at once for one backend (64)


@pytest.fixture(scope="module")
def operator(plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    with operator_running(plane, tmp_path_factory.mktemp("operator"), [f"{NAMESPACE_PREFIX}*"]) as process:
        yield process


class SilentServer:
    """Accepts TCP connections and never answers; counts the connections open."""

    def __init__(self) -> None:
        self.port = free_port()
        self.open = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> SilentServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._hold, "127.0.0.1", self.port))
        self._ready.set()
        self._loop.run_forever()

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        holders = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in holders:
            task.cancel()
        await asyncio.gather(*holders, return_exceptions=True)

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        try:
            while await reader.read(65536):
                pass  # the request is read and never answered
        finally:
            self.open -= 1
            writer.close()


def test_a_hung_backend_does_not_hold_other_backends_keys(
    cluster: Cluster, kms: KMSServer, operator: ManagedProcess
) -> None:
    with SilentServer() as silent:
        hung = cluster.backend(kms, f"hung-{uuid.uuid4().hex[:8]}", endpoint=silent.endpoint)
        for index in range(HUNG_KEYS):
            cluster.create_key(f"stuck-{index}", {"backendRef": {"name": hung}})
        wait_for(lambda: silent.open >= 64, 30, "the hung backend's KMSKeys waiting on it")

        healthy = cluster.backend(kms, f"hung-ok-{uuid.uuid4().hex[:8]}")
        cluster.create_key("fresh", {"backendRef": {"name": healthy}})
        # Well before any call on the hung backend times out (30 s).
        status = cluster.wait_ready("fresh", timeout=15)
        assert kms.call("describe_key", status["keyId"]).key_id == status["keyId"]
        assert silent.open >= 64  # the hung ones were still waiting all along
