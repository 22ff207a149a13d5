"""Several real ``kubekms server`` processes on one PostgreSQL database, as the chart's replicas run.

Every replica has its own state_dir holding the same root key and principals (the chart
installs both from Secrets), one worker process, and the same ``database_url_file``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import yaml
from prometheus_client.parser import text_string_to_metric_families
from psycopg.conninfo import conninfo_to_dict

from kubekms.devenv.kmsserver import ADMIN, KMSServer, Principal

PROJECT = "replicated"


def drop_connections(connection: psycopg.Connection[tuple[int]], database_url: str) -> int:
    """pg_terminate_backend on every other session of the test database: the pools (and lock) of its users."""
    row = connection.execute(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
        (conninfo_to_dict(database_url)["dbname"],),
    ).fetchone()
    return int(row[0]) if row else 0


def _configure(server: KMSServer, url_file: Path) -> None:
    config_path = server.state_dir / "server.yaml"
    config = yaml.safe_load(config_path.read_text())
    config_path.write_text(yaml.safe_dump({**config, "database_url_file": str(url_file), "workers": 1}))


@contextmanager
def replicas(
    base: Path,
    database_url: str,
    *,
    count: int = 3,
    maintenance_interval: float = 10.0,
    cmk_limit: int = 1000,
    projects: tuple[str, ...] = (PROJECT,),
    principals: tuple[Principal, ...] = (),
    together: bool = False,
) -> Iterator[list[KMSServer]]:
    """``count`` servers on ``database_url``, started, each holding one root key for every one of ``projects``
    (the AWS wire's account of the admin, whose projects are "*", is "default"); ``together``: all started at
    once (as a Deployment's pods start), else one after another."""
    url_file = base / "database-url"
    url_file.write_text(database_url + "\n")
    url_file.chmod(0o600)
    root_key = os.urandom(32)  # the chart's Secret: one root key for every replica

    def make(state_dir: Path) -> KMSServer:
        return KMSServer(state_dir, project_id=PROJECT, maintenance_interval=maintenance_interval,
                         cmk_limit=cmk_limit, principals=principals)  # fmt: skip

    first = make(base / "replica-0")
    servers: list[KMSServer] = []
    done = threading.Event()
    try:
        for number in range(count):
            state_dir = base / f"replica-{number}"
            (state_dir / "credentials").mkdir(mode=0o700, parents=True, exist_ok=True)
            if number:  # the same principals everywhere (the chart's principals Secret)
                for name in (ADMIN, *(principal.name for principal in principals)):
                    shutil.copy2(first.credentials_file(name), state_dir / "credentials" / f"{name}.yaml")
            for name in projects:
                project = state_dir / "keystore" / name
                project.mkdir(mode=0o700, parents=True)
                (project / "root.key").write_bytes(root_key)
                (project / "root.key").chmod(0o600)
            server = first if not number else make(state_dir)
            _configure(server, url_file)
            servers.append(server)
            if not together:
                server.start()
        if together:
            _start_together(servers, done)
        yield servers
    finally:
        for server in servers:
            server.stop()
        done.set()


def _start_together(servers: list[KMSServer], done: threading.Event) -> None:
    """Start every server from a thread of its own, which lives until ``done``: a server dies with the thread
    that started it (PR_SET_PDEATHSIG follows the forking thread)."""
    started = [threading.Event() for _ in servers]

    def run(server: KMSServer, ready: threading.Event) -> None:
        try:
            server.start()
        finally:
            ready.set()
        done.wait()

    for server, ready in zip(servers, started, strict=True):
        threading.Thread(target=run, args=(server, ready), daemon=True).start()
    for ready in started:
        ready.wait(120)
    assert all(server.running for server in servers), "a replica did not start"


def metric(server: KMSServer, name: str) -> float:
    """One unlabelled counter or gauge of a server's /metrics."""
    with urllib.request.urlopen(f"{server.endpoint}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    raise AssertionError(f"{name} not in the metrics of {server.endpoint}")


class RoundRobinProxy:
    """A loopback TCP balancer in front of the replicas, as a Service is: each new client connection
    goes to the next replica that accepts it (a refused one is skipped, as an unready endpoint is)."""

    def __init__(self, ports: list[int]) -> None:
        self._ports = ports
        self._next = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    def __enter__(self) -> RoundRobinProxy:
        self._thread.start()
        server = asyncio.run_coroutine_threadsafe(asyncio.start_server(self._serve, "127.0.0.1", 0), self._loop).result(
            10
        )
        self.port = server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        for _ in self._ports:
            port = self._ports[self._next % len(self._ports)]
            self._next += 1
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                continue
            await asyncio.gather(self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer))
            return
        client_writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:  # one side gone (a killed replica): the other side is closed too, as a dead pod's would be
            writer.close()
