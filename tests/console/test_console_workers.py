"""The console on a server of two worker processes: one session, notices and sign-out hold on both.

The audit log goes to standard output here, so the key page cannot say who created a key.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from console_harness import PROJECT, ConsoleHttp, credentials, start_server

from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import wait_for
from kubekms.server.console.settings import SESSIONS_FILE
from kubekms.server.console.throttle import FAILURES_PER_ACCESS_KEY
from kubekms.server.workers import WORKER_HEADER

WORKERS = 2
COOKIE = "kubekms-console"


@pytest.fixture(scope="module")
def workers_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    running = start_server(tmp_path_factory.mktemp("console-workers"), {"workers": WORKERS, "audit_log": "-"})
    yield running
    running.stop()


def answers_from_every_worker(client: ConsoleHttp, path: str, expected: int) -> dict[str, int]:
    """GET ``path`` on new connections until each worker has answered ``expected``; the requests per worker."""
    seen: dict[str, int] = {}

    def every_worker() -> bool:
        answer = client.get(path)
        assert answer.status_code == expected, (answer.status_code, answer.headers.get("Location"))
        pid = answer.headers[WORKER_HEADER]
        seen[pid] = seen.get(pid, 0) + 1
        return len(seen) == WORKERS

    wait_for(every_worker, 30, f"{WORKERS} workers answering {path}", interval=0.0)
    return seen


def test_a_session_made_on_one_worker_holds_on_the_other_until_sign_out(workers_server: KMSServer) -> None:
    client = ConsoleHttp(workers_server.endpoint, new_connections=True)
    signed_in = client.sign_in(*credentials(workers_server, "admin"))
    assert signed_in.status_code == 303 and signed_in.headers["Location"] == "/console/"
    signed_in_on = signed_in.headers[WORKER_HEADER]
    token = client.session.cookies[COOKIE]
    assert token

    pages = answers_from_every_worker(client, f"/console/p/{PROJECT}/keys", 200)
    assert signed_in_on in pages and len(pages) == WORKERS  # the other worker knew the session too

    created = client.post(f"/console/p/{PROJECT}/keys", data={"csrf": client.csrf(), "alias": "made-on-workers"})
    assert created.status_code == 303
    key_page = created.headers["Location"]
    shown = client.get(key_page)  # on a new connection, whichever worker: the notice waits in the shared store
    assert "Key made-on-workers created." in shown.text, shown.headers[WORKER_HEADER]
    assert "Key made-on-workers created." not in client.get(key_page).text
    assert "Created by" not in shown.text  # the audit log is standard output: nothing to read back

    session_csrf = client.csrf()
    signed_out = client.post("/console/sign-out", data={"csrf": session_csrf})
    assert signed_out.status_code == 303 and signed_out.headers["Location"].endswith("signed-out=1")
    stolen = ConsoleHttp(workers_server.endpoint, new_connections=True)
    stolen.session.cookies.set(COOKIE, token)  # a copy of the cookie kept after sign-out
    refused = answers_from_every_worker(stolen, f"/console/p/{PROJECT}/keys", 303)
    assert len(refused) == WORKERS
    assert stolen.get(f"/console/p/{PROJECT}/keys").headers["Location"] == "/console/sign-in?ended=1"

    sessions_file = workers_server.state_dir / "keystore" / SESSIONS_FILE
    written = b"".join(path.read_bytes() for path in sessions_file.parent.glob(SESSIONS_FILE + "*"))
    assert written  # the sessions file (and its WAL) exist ...
    for secret in (token, session_csrf):  # ... but neither the server's output nor that file holds a secret
        assert secret not in workers_server.log.read_text() and secret.encode() not in written


def test_failed_sign_ins_count_on_every_worker(workers_server: KMSServer) -> None:
    """The limit is one for the server, not one per worker: after the limit, every worker refuses."""
    access_key, secret_key = credentials(workers_server, "reader")
    client = ConsoleHttp(workers_server.endpoint, new_connections=True)
    for _ in range(FAILURES_PER_ACCESS_KEY):
        assert client.sign_in(access_key, "wrong").status_code == 401
    refusing: set[str] = set()

    def every_worker_refuses() -> bool:
        answer = client.sign_in(access_key, secret_key)  # the right secret, not checked any more
        assert answer.status_code == 429, answer.status_code
        refusing.add(answer.headers[WORKER_HEADER])
        return len(refusing) == WORKERS

    wait_for(every_worker_refuses, 30, "every worker refusing the sign-in", interval=0.0)
