"""The retry policy's ``deadline`` bounds a whole REST call, the attempt in flight included.

``RetryPolicy.deadline`` is documented as the most time one call may spend, attempts and waits
included. The transport checked it only between attempts, while each attempt ran under the
session's own ``request_timeout`` (30 s): a KMS that accepts the connection and then never
answers held a call for the full 30 s however small the deadline, and an attempt begun just
before the deadline ran 30 s past it. The server here is the real ``kubekms server``, stopped
with SIGSTOP: the kernel still accepts connections and takes the request, nothing answers.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubekms.credentials import Credentials
from kubekms.devenv.kmsserver import KMSServer, kms_server
from kubekms.errors import Unavailable
from kubekms.providers.rest import RestBackend
from kubekms.providers.retry import RetryPolicy


@pytest.fixture
def server(tmp_path: Path) -> Iterator[KMSServer]:
    with kms_server(tmp_path / "kms") as running:
        yield running


def _client(server: KMSServer, policy: RetryPolicy) -> RestBackend:
    credentials = Credentials.from_file(server.credentials_file("admin"))
    return RestBackend(server.endpoint, server.project_id, credentials, retry=policy)


async def test_a_kms_that_never_answers_fails_the_call_within_the_retry_deadline(server: KMSServer) -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=0.05, max_delay=0.2, deadline=2.0)
    client = _client(server, policy)
    pid = server.pid
    assert pid is not None
    try:
        key = await client.create_key("never-answers")
        os.kill(pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(Unavailable, match="no answer from the KMS"):
                # the outer bound only keeps a failing run short; the session's own timeout is 30 s
                await asyncio.wait_for(client.describe_key(key.key_id), timeout=20)
            elapsed = time.monotonic() - started
        finally:
            os.kill(pid, signal.SIGCONT)
        assert elapsed < policy.deadline + 3.0, f"the call took {elapsed:.1f} s, its deadline is {policy.deadline} s"
        # the server, running again, answers the same client
        assert (await client.describe_key(key.key_id)).key_id == key.key_id
    finally:
        await client.close()
