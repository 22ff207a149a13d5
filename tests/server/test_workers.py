"""``workers: 2`` (issue 15): several processes really serve one listener, share the keystore,
aggregate their metrics, write one audit chain from both wires, and survive a worker's kill -9."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from huaweicloudsdkkms.v2 import (
    CreateDatakeyRequest,
    CreateDatakeyRequestBody,
    CreateKeyRequest,
    CreateKeyRequestBody,
    KmsClient,
)
from prometheus_client.parser import text_string_to_metric_families
from test_aws_wire import kms_client

from kubekms.cli.main import cli
from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import kubekms_argv, wait_for
from kubekms.providers import Credentials
from kubekms.server.workers import WORKER_HEADER
from kubekms.wire.signing import sign_headers

WORKERS = 2


def start_with_workers(state_dir: Path) -> KMSServer:
    server = KMSServer(state_dir, project_id="default")  # the AWS wire serves project "default"
    config_path = state_dir / "server.yaml"  # written by KMSServer; documented in kubekms.devenv.kmsserver
    config = yaml.safe_load(config_path.read_text())
    config_path.write_text(
        yaml.safe_dump({**config, "workers": WORKERS, "maintenance_interval": 0.2, "console": {"enabled": False}})
    )
    server.start()
    return server


def workers_set_up(server: KMSServer) -> list[int]:
    """The workers the supervisor has logged as set up (it lets them serve only once all are)."""
    lines = [json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")]
    return sorted(line["worker"] for line in lines if line.get("message") == "worker set up")


@contextlib.contextmanager
def running_with_workers(state_dir: Path) -> Iterator[KMSServer]:
    server = start_with_workers(state_dir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with running_with_workers(tmp_path_factory.mktemp("kms-workers")) as running:
        yield running


def describe(server: KMSServer, key_id: str) -> tuple[int, str]:
    """A signed describe-key on a new connection: (status, pid of the worker that answered)."""
    credentials = Credentials.from_file(server.credentials_file("admin"))
    url = f"{server.endpoint}/v1.0/{server.project_id}/kms/describe-key"
    body = json.dumps({"key_id": key_id}).encode()
    headers = sign_headers("POST", url, {"Content-Type": "application/json"}, body, credentials)
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status, answer.headers[WORKER_HEADER]


def serving_pids(server: KMSServer, key_id: str, count: int) -> dict[str, int]:
    """Describe ``key_id`` until ``count`` different workers have answered it; requests per pid."""
    served: dict[str, int] = {}

    def enough() -> bool:
        status, pid = describe(server, key_id)
        assert status == 200
        served[pid] = served.get(pid, 0) + 1
        return len(served) >= count

    wait_for(enough, 30, f"{count} workers answering", interval=0.0)
    return served


def create_key(server: KMSServer, alias: str, sdk_client: Callable[..., KmsClient]) -> str:
    client = sdk_client(server)
    return str(client.create_key(CreateKeyRequest(body=CreateKeyRequestBody(key_alias=alias))).key_info.key_id)


def requests_total(server: KMSServer, operation: str) -> float:
    with urllib.request.urlopen(f"{server.endpoint}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "kubekms_server_requests_total" and sample.labels["operation"] == operation
    )


def audit_lines(server: KMSServer) -> list[dict[str, Any]]:
    return [json.loads(line) for line in server.audit_log.read_bytes().splitlines()]


def data_key_calls(server: KMSServer, key_id: str) -> dict[str, int]:
    """Audited data-key calls on ``key_id``, by operation (one per wire)."""
    counted = {"create-datakey": 0, "aws:GenerateDataKey": 0}
    for line in audit_lines(server):
        if line["operation"] in counted and key_id in line["key_id"]:
            counted[line["operation"]] += 1
    return counted


def verified_chain(server: KMSServer, key_id: str, per_wire: int) -> str:
    """Once every call of the load on ``key_id`` is on disk (workers write every 0.2 s), ``audit verify``."""
    wanted = {"create-datakey": per_wire, "aws:GenerateDataKey": per_wire}
    wait_for(lambda: data_key_calls(server, key_id) == wanted, 30, f"{per_wire} audited calls per wire")
    result = CliRunner().invoke(cli, ["audit", "verify", str(server.audit_log)])
    assert result.exit_code == 0, result.output
    return result.output


def test_keys_made_through_one_worker_are_served_by_every_worker_and_metrics_add_up(
    server: KMSServer, sdk_client: Callable[..., KmsClient]
) -> None:
    key_id = create_key(server, "seen-everywhere", sdk_client)
    before = requests_total(server, "describe-key")
    served = serving_pids(server, key_id, WORKERS)
    assert len(served) == WORKERS and all(pid.isdigit() for pid in served)
    # /metrics (answered by one worker) counts the describe-key calls every worker served (flushed every 0.2 s)
    wait_for(lambda: requests_total(server, "describe-key") - before == sum(served.values()), 10,
             "every worker's calls counted")  # fmt: skip


def test_the_server_answers_only_once_every_worker_is_set_up(tmp_path: Path) -> None:
    """start() returns at the first /healthz answer: by then every worker is set up and serving, so a readiness
    probe means the whole server (worker 1 used to start only after worker 0 served, ~1 s later)."""
    with running_with_workers(tmp_path / "kms") as server:
        assert workers_set_up(server) == list(range(WORKERS))
        # and each of them answers at once: a burst of new connections reaches both (none waits for a start)
        seen = {_healthz_worker(server) for _ in range(64)}
        assert len(seen) == WORKERS, seen


def _healthz_worker(server: KMSServer) -> str:
    with urllib.request.urlopen(f"{server.endpoint}/healthz", timeout=5) as answer:
        return str(answer.headers[WORKER_HEADER])


def load_both_wires(
    server: KMSServer, key_id: str, threads: int, calls: int, sdk_client: Callable[..., KmsClient]
) -> None:
    failures: list[BaseException] = []

    def v1_caller() -> None:
        client = sdk_client(server)
        body = CreateDatakeyRequestBody(key_id=key_id, datakey_length="256")
        for _ in range(calls):
            client.create_datakey(CreateDatakeyRequest(body=body))

    def aws_caller() -> None:
        client = kms_client(server)
        for _ in range(calls):
            client.generate_data_key(KeyId=key_id, KeySpec="AES_256")

    def run(target: Any) -> None:
        try:
            target()
        except BaseException as error:  # reported by the test below, not lost in the thread
            failures.append(error)

    workers = [threading.Thread(target=run, args=(v1_caller if n % 2 else aws_caller,)) for n in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    assert not failures, failures


def test_the_audit_chain_holds_after_concurrent_calls_on_both_wires(
    server: KMSServer, sdk_client: Callable[..., KmsClient]
) -> None:
    key_id = create_key(server, "chain-under-load", sdk_client)
    load_both_wires(server, key_id, threads=8, calls=25, sdk_client=sdk_client)
    output = verified_chain(server, key_id, per_wire=100)
    assert f"sequence 1..{len(audit_lines(server))}" in output


def test_a_worker_killed_with_sigkill_is_replaced_and_the_chain_still_verifies(
    tmp_path: Path, sdk_client: Callable[..., KmsClient]
) -> None:
    server = start_with_workers(tmp_path / "kms")
    try:
        key_id = create_key(server, "survivor", sdk_client)
        served = serving_pids(server, key_id, WORKERS)
        victim = next(iter(served))
        os.kill(int(victim), signal.SIGKILL)
        for _ in range(20):  # every call answered: one reaching the dead worker's socket waits for its successor
            assert describe(server, key_id)[0] == 200
        replaced = serving_pids(server, key_id, WORKERS)
        assert victim not in replaced  # a new worker serves in its place
        load_both_wires(server, key_id, threads=4, calls=10, sdk_client=sdk_client)
        verified_chain(server, key_id, per_wire=20)
        pids = [int(pid) for pid in replaced]
    finally:
        server.stop()
    # SIGTERM drained and ended every worker
    wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in pids), 20, "every worker gone")


def test_auto_counts_the_cpus_the_server_may_use_not_the_hosts() -> None:
    """``workers: auto`` in a process pinned to one CPU (as a container's cpuset does) is 1."""
    probe = "from kubekms.server.config import available_cpus; print(available_cpus())"
    pinned = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            preexec_fn=lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}))  # fmt: skip
    assert pinned.stdout.strip() == "1"


@pytest.mark.skipif(os.geteuid() != 0, reason="a new PID namespace (unshare --pid) needs root")
def test_workers_start_when_the_server_is_pid_1_as_in_a_container(tmp_path: Path) -> None:
    """In a container the server is pid 1: its workers, whose parent it is, must not take that for orphaned."""
    server = KMSServer(tmp_path / "kms", project_id="default")
    config_path = server.state_dir / "server.yaml"
    config = yaml.safe_load(config_path.read_text())
    config_path.write_text(yaml.safe_dump({**config, "workers": WORKERS}))
    serve = kubekms_argv("server", "--config", str(config_path), "--init")
    argv = ["unshare", "--pid", "--fork", "--kill-child", *serve]
    with (server.state_dir / "pid1.log").open("wb") as log, subprocess.Popen(argv, stdout=log, stderr=log) as process:
        try:
            key = wait_for(lambda: process.poll() is None and _created(server), 60, "the pid-1 server serving")
            assert len(serving_pids(server, key, WORKERS)) == WORKERS
        finally:  # unshare does not pass SIGTERM on; killed, --kill-child kills the namespace's pid 1 and so all
            process.kill()
            process.wait(30)


def _created(server: KMSServer) -> str:
    """A new key's id once the server answers (empty while it does not)."""
    try:
        return str(server.call("create_key", "pid-one").key_id)
    except Exception:  # not listening yet: the condition polls again
        return ""


def test_connections_opened_at_once_are_spread_over_the_workers(server: KMSServer) -> None:
    """16 keep-alive connections opened together: every worker gets some (one shared socket gave one worker all 16)."""
    connections = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(16)]
    try:
        for connection in connections:
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        workers = [_answering_worker(connection) for connection in connections]
    finally:
        for connection in connections:
            connection.close()
    spread = {pid: workers.count(pid) for pid in set(workers)}
    assert len(spread) == WORKERS, spread


def _answering_worker(connection: socket.socket) -> str:
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = connection.recv(4096)
        assert chunk, "the server closed the connection"
        head += chunk
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == WORKER_HEADER.lower().encode():
            return value.strip().decode()
    raise AssertionError(f"no {WORKER_HEADER} header in {head!r}")
