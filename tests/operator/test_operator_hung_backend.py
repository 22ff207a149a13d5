"""A backend that never answers holds only its own KMSKeys: a new KMSKey of another backend is Ready at once.

The operator is a real subprocess. The hung backend is a TCP server that accepts connections and
never answers (what a blackholed or wedged KMS looks like to a client): each call on it waits for
the client's request timeout (30 s). With more of its KMSKeys than the operator handles at once,
a KMSKey of a healthy backend created meanwhile must not wait for them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from operator_support import Cluster, LoopbackServer, operator_running

from kubekms.devenv.controlplane import ControlPlane
from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import ManagedProcess, wait_for

pytestmark = pytest.mark.e2e
NAMESPACE_PREFIX = "hung-"
HUNG_KEYS = 80  # more than the operator handles at once for one backend (64)


@pytest.fixture(scope="module")
def operator(plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    with operator_running(plane, tmp_path_factory.mktemp("operator"), [f"{NAMESPACE_PREFIX}*"]) as process:
        yield process


class SilentServer(LoopbackServer):
    """Accepts TCP connections and never answers; counts the connections open."""

    def __init__(self) -> None:
        super().__init__()
        self.open = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
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
