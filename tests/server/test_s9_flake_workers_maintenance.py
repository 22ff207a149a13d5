"""With ``workers: 2`` the maintenance pass runs in the leader only, over every project on disk.

A project whose first request reached another worker (which worker is the kernel's choice, by address hash) was
never open in the leader until a request of its own landed there or the server restarted: its keys past their
pending window were not destroyed, its rotations not made (S9-H4-1, found while hunting flaky tests: a test of
that passed or failed with the kernel's choice). The leader now opens every project on disk for its pass.
"""

from __future__ import annotations

import http.client
import json
import sqlite3
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kubekms.backend import KeyState
from kubekms.devenv.kmsserver import KMSServer
from kubekms.providers import Credentials
from kubekms.server.workers import WORKER_HEADER
from kubekms.wire.signing import sign_headers

DEADLINE = 30.0  # seconds for any condition below


@pytest.fixture
def server(tmp_path: Path) -> Iterator[KMSServer]:
    server = KMSServer(tmp_path / "kms", project_id="default")
    config_path = tmp_path / "kms" / "server.yaml"  # written by KMSServer
    config = yaml.safe_load(config_path.read_text())
    config_path.write_text(
        yaml.safe_dump({**config, "workers": 2, "maintenance_interval": 0.2, "console": {"enabled": False}})
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _children(server: KMSServer) -> list[tuple[int, int]]:
    """The supervisor's children: (start time, pid)."""
    children: list[tuple[int, int]] = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == server.pid:  # ppid
            children.append((int(fields[19]), int(stat_file.parent.name)))  # starttime, pid
    return children


def _leader_pid(server: KMSServer) -> str:
    """The worker started first (worker 0, the leader): the supervisor's child with the earliest start time.

    The server answers only once every worker is set up, so both exist when start() returns (CI once looked
    before the second existed, when it was started after the leader served).
    """
    children = _children(server)
    assert len(children) == 2, children
    return str(min(children)[1])


class Pinned:
    """One keep-alive connection, so every request on it is served by the same worker."""

    def __init__(self, server: KMSServer) -> None:
        self._server = server
        self._credentials = Credentials.from_file(server.credentials_file("admin"))
        self._connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        self._connection.request("GET", "/healthz")
        answer = self._connection.getresponse()
        answer.read()
        self.pid = str(answer.headers[WORKER_HEADER])

    def call(self, project: str, operation: str, body: dict[str, object]) -> dict[str, object]:
        path = f"/v1.0/{project}/kms/{operation}"
        data = json.dumps(body).encode()
        headers = sign_headers(
            "POST", f"{self._server.endpoint}{path}", {"Content-Type": "application/json"}, data, self._credentials
        )
        self._connection.request("POST", path, body=data, headers=headers)
        answer = self._connection.getresponse()
        payload: dict[str, object] = json.loads(answer.read())
        assert answer.status == 200, payload
        assert answer.headers[WORKER_HEADER] == self.pid  # still the same worker
        return payload

    def close(self) -> None:
        self._connection.close()


def _pinned_to(server: KMSServer, *, leader: str, want_leader: bool) -> Pinned:
    deadline = time.monotonic() + DEADLINE
    while True:
        pinned = Pinned(server)
        if (pinned.pid == leader) == want_leader:
            return pinned
        pinned.close()
        assert time.monotonic() < deadline, "no connection reached the wanted worker"


def _key_due_for_deletion(server: KMSServer, pinned: Pinned, project: str) -> str:
    """A key made in ``project`` through ``pinned``, scheduled for deletion, its pending window ended already."""
    created = pinned.call(project, "create-key", {"key_alias": f"{project}-key"})
    key_id = str(created["key_info"]["key_id"])  # type: ignore[index]
    pinned.call(project, "schedule-key-deletion", {"key_id": key_id, "pending_days": "7"})
    # the window is days long: its end is moved to the past in the keystore itself (no request reaches the leader)
    with sqlite3.connect(server.state_dir / "keystore" / project / "keystore.db", timeout=30) as db:
        db.execute("UPDATE keys SET deletion_date = 0 WHERE key_id = ?", (key_id,))
    return key_id


def _state(server: KMSServer, project: str, key_id: str) -> str:
    with sqlite3.connect(server.state_dir / "keystore" / project / "keystore.db", timeout=30) as db:
        (state,) = db.execute("SELECT state FROM keys WHERE key_id = ?", (key_id,)).fetchone()
    return str(state)


def _maintenance_passes(server: KMSServer) -> float:
    with urllib.request.urlopen(f"{server.endpoint}/metrics", timeout=10) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith("kubekms_server_maintenance_passes_total "):
                return float(line.split()[1])
    return 0.0


def test_a_key_past_its_pending_window_is_destroyed_whichever_worker_opened_its_project(server: KMSServer) -> None:
    leader = _leader_pid(server)
    on_leader, elsewhere = _pinned_to(server, leader=leader, want_leader=True), None
    try:
        elsewhere = _pinned_to(server, leader=leader, want_leader=False)
        control = _key_due_for_deletion(server, on_leader, "openedbyleader")
        key_id = _key_due_for_deletion(server, elsewhere, "openedbyother")
        deadline = time.monotonic() + DEADLINE
        while _state(server, "openedbyleader", control) != KeyState.DESTROYED.value:  # the passes run
            assert time.monotonic() < deadline, "the leader's maintenance destroyed nothing"
            time.sleep(0.05)  # polling interval of a condition with a deadline
        passes = _maintenance_passes(server)
        while _maintenance_passes(server) < passes + 3:  # three more whole passes after the control's
            assert time.monotonic() < deadline, "no maintenance passes"
            time.sleep(0.05)  # polling interval of a condition with a deadline
        assert _state(server, "openedbyother", key_id) == KeyState.DESTROYED.value
    finally:
        on_leader.close()
        if elsewhere is not None:
            elsewhere.close()
