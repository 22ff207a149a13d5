"""Throughput and latency of the kubekms server on loopback: ``python bench/server_bench.py``.

Starts a real ``kubekms server`` (the launcher, with its Cloud KMS gRPC listener), creates a key,
then drives it with 16 and 64 concurrent clients for ``/healthz`` (the framework ceiling: aiohttp
and the event loop doing nothing) and for the v1.0 wire's create-datakey, decrypt-datakey and
describe-key. Prints requests/s, p50 and p99 latency, each operation's ratio to the ceiling
measured in the same run and the server's CPU per request, and checks the targets (data keys
>= 5,000 req/s, >= 60 % of the ceiling, p99 <= 20 ms at 64 clients).

The generator is wrk (:mod:`wrk_load`), replaying one request signed before the run (a signature
is valid for 15 minutes): it costs the server's cores as little as a generator can.
``--generator python`` uses the older generator instead (a bare asyncio protocol per keep-alive
connection, each request signed afresh with :func:`kubekms.wire.signing.sign_headers`); it is
also the fallback when wrk cannot be installed.

On the first setting, the same server is also measured on its other wires in the same run: the
AWS wire beside moto and local-kms (``aws_bench.py``) and Encrypt/Decrypt over the Cloud KMS gRPC
API (``gcp_bench.py``); ``--skip-aws`` and ``--skip-gcp`` leave them out.

``--workers 1 auto`` (the default) runs everything once per worker setting (the server's
``workers``: a number or ``auto``, the CPU count), and ``--keystores sqlite postgres`` once per
keystore engine too (PostgreSQL: a throwaway Debian PostgreSQL 15 on loopback, a fresh database
per setting); each setting gets a fresh server, and the settings are printed side by side: req/s,
p50/p99, the ratio to the first setting and each setting's ratio to its own ``/healthz``
ceiling. Server CPU counts the supervisor and all its workers (not PostgreSQL's processes).

``--profile-server FILE`` runs the server under cProfile (one process: ``workers: 1``) and prints
where its time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from load_support import interpreter, timed_calls
from wrk_load import PresignedRequest, add_generator_option, run_wrk, wrk_binary

from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import ManagedProcess
from kubekms.providers import BackendConfig, Credentials
from kubekms.providers.rest import open_rest_backend
from kubekms.wire.signing import sign_headers

OPERATIONS = ("healthz", "create-datakey", "decrypt-datakey", "describe-key")
DATA_KEY_OPERATIONS = ("create-datakey", "decrypt-datakey")
TARGET_RPS = 5000
TARGET_RATIO = 0.6  # issue 15: data-key operations at >= 60 % of our own /healthz ceiling
TARGET_P99_MS = 20.0


# ----------------------------------------------------------------------------- the generator (worker process)


class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection with one request in flight; answers only need a status."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[int] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self._buffer[:end]).lower()
        start = head.find(b"content-length:")
        length = int(head[start + 15 : head.find(b"\r\n", start) if head.find(b"\r\n", start) > 0 else None])
        if len(self._buffer) < end + 4 + length:
            return
        status = int(self._buffer[9:12])
        del self._buffer[: end + 4 + length]
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ConnectionError("connection lost"))

    async def send(self, request: bytes) -> int:
        assert self.transport is not None
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self._waiter


@dataclass(frozen=True)
class Job:
    host: str
    port: int
    project_id: str
    access_key: str
    secret_key: str
    operation: str
    body: dict[str, Any]
    clients: int
    start_at: float
    warmup: float
    duration: float


def signed_request(job: Job, credentials: Credentials) -> PresignedRequest:
    """One v1.0 request (or GET /healthz) signed now with SDK-HMAC-SHA256, Host included."""
    netloc = f"{job.host}:{job.port}"
    if job.operation == "healthz":
        method, path, body = "GET", "/healthz", b""
    else:
        method, path = "POST", f"/v1.0/{job.project_id}/kms/{job.operation}"
        body = json.dumps(job.body, separators=(",", ":")).encode()
    headers = sign_headers(
        method,
        f"http://{netloc}{path}",
        {"Content-Type": "application/json", "X-Project-Id": job.project_id},
        body,
        credentials,
    )
    return PresignedRequest(method, path, {"Host": netloc, **headers}, body)


def request_bytes(job: Job, credentials: Credentials) -> bytes:
    request = signed_request(job, credentials)
    lines = "".join(f"{name}: {value}\r\n" for name, value in request.headers.items() if name != "Host")
    head = f"{request.method} {request.path} HTTP/1.1\r\nHost: {request.headers['Host']}\r\n{lines}"
    return f"{head}Content-Length: {len(request.body)}\r\n\r\n".encode() + request.body


async def drive(job: Job) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    credentials = Credentials(job.access_key, job.secret_key)
    connections = [(await loop.create_connection(HttpConnection, job.host, job.port))[1] for _ in range(job.clients)]
    cpu_before = time.process_time()

    async def call(index: int) -> bool:
        return await connections[index].send(request_bytes(job, credentials)) == 200

    result = await timed_calls(job.clients, job.start_at, job.warmup, job.duration, call)
    for connection in connections:
        assert connection.transport is not None
        connection.transport.close()
    return {**result, "cpu": time.process_time() - cpu_before}


def worker_main() -> None:
    settings = json.loads(sys.stdin.read())
    cpus = settings.pop("cpus", None)
    if cpus:
        os.sched_setaffinity(0, set(cpus))
    job = Job(**settings)
    try:
        import uvloop

        result = uvloop.run(drive(job))
    except ImportError:
        result = asyncio.run(drive(job))
    json.dump(result, sys.stdout)


# ----------------------------------------------------------------------------- the conductor


@dataclass(frozen=True)
class Figures:
    operation: str
    clients: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_cpu_us: float
    """Server CPU time (user + system) per request over the whole run, warm-up included."""
    generator_cpu_us: float
    """The same for the load generators: small beside the server's, or the figures measure the generator."""


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of ``pid`` and its children (the server's workers)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue  # a process that ended meanwhile
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def run_load(
    base: dict[str, Any],
    operation: str,
    body: dict[str, Any],
    clients: int,
    generators: int,
    server_pid: int,
    wrk: str | None = None,
) -> Figures:
    """wrk replaying one pre-signed request when ``wrk`` is its path; else the Python generator, signing each."""
    if wrk is not None:
        return _run_wrk(wrk, base, operation, body, clients, server_pid)
    cpu_before = cpu_seconds(server_pid)
    start_at = time.time() + 1.0
    shares = [clients // generators + (1 if i < clients % generators else 0) for i in range(generators)]
    processes = []
    for share in shares:
        job = {**base, "operation": operation, "body": body, "clients": share, "start_at": start_at}
        process = subprocess.Popen(
            [sys.executable, __file__, "--worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert process.stdin is not None
        process.stdin.write(json.dumps(job))
        process.stdin.close()
        processes.append(process)
    latencies: list[float] = []
    errors = sent = 0
    generator_cpu = 0.0
    for process in processes:
        assert process.stdout is not None
        result = json.loads(process.stdout.read())
        if process.wait() != 0:
            raise SystemExit(f"a load generator failed (exit {process.returncode})")
        latencies += result["latencies"]
        errors += result["errors"]
        sent += result["sent"]
        generator_cpu += result["cpu"]
    server_cpu_us = (cpu_seconds(server_pid) - cpu_before) / max(sent, 1) * 1e6
    if not latencies:
        raise SystemExit(f"{operation}: no request completed")
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    rps = len(latencies) / base["duration"]
    generator_cpu_us = generator_cpu / max(sent, 1) * 1e6
    return Figures(operation, clients, rps, cuts[49] * 1000, cuts[98] * 1000, errors, server_cpu_us, generator_cpu_us)


def _run_wrk(wrk: str, base: dict[str, Any], operation: str, body: dict[str, Any], clients: int,
             server_pid: int) -> Figures:  # fmt: skip
    settings = {name: value for name, value in base.items() if name != "cpus"}
    job = Job(**settings, operation=operation, body=body, clients=clients, start_at=0.0)
    request = signed_request(job, Credentials(job.access_key, job.secret_key))
    cpu: list[float] = []
    result = run_wrk(wrk, f"http://{job.host}:{job.port}", request, clients, warmup=job.warmup, duration=job.duration,
                     between=lambda: cpu.append(cpu_seconds(server_pid)))  # fmt: skip
    requests = max(result.requests, 1)
    server_cpu_us = (cpu_seconds(server_pid) - cpu[0]) / requests * 1e6
    return Figures(operation, clients, result.rps, result.p50_ms, result.p99_ms, result.errors, server_cpu_us,
                   result.generator_cpu_s / requests * 1e6)  # fmt: skip


async def prepare(server: KMSServer) -> dict[str, dict[str, Any]]:
    """A key and a data-key ciphertext to decrypt; the bodies each operation sends."""
    config = BackendConfig(
        provider="kubekms",
        endpoint=server.endpoint,
        project_id=server.project_id,
        credentials_file=server.credentials_file("admin"),
    )
    backend = await open_rest_backend(config)
    try:
        key = await backend.create_key("bench-key")
        data_key = await backend.create_data_key(key.key_id)
    finally:
        await backend.close()
    return {
        "healthz": {},
        "create-datakey": {"key_id": key.key_id, "datakey_length": "256"},
        "decrypt-datakey": {
            "key_id": key.key_id,
            "cipher_text": data_key.ciphertext.hex(),
            "datakey_cipher_length": "32",
        },
        "describe-key": {"key_id": key.key_id},
    }


def _healthy(endpoint: str) -> bool:
    with urllib.request.urlopen(f"{endpoint}/healthz", timeout=2) as answer:
        return bool(answer.status == 200)


def profiled_restart(server: KMSServer, state_dir: Path, output: Path) -> ManagedProcess:
    """Stop the launcher's server and run the same config under cProfile (written when it stops)."""
    server.stop()
    runner = state_dir / "run_server.py"
    runner.write_text("from kubekms.cli.main import main\nmain()\n")
    argv = [sys.executable, "-m", "cProfile", "-o", str(output), str(runner), "server", "--config"]
    process = ManagedProcess("kubekms-server-profiled", [*argv, str(state_dir / "server.yaml")], server.log)
    process.start()
    process.wait_until(lambda: _healthy(server.endpoint), 60, "serving /healthz under cProfile")
    return process


def report(results: list[Figures], ceilings: dict[int, float]) -> bool:
    header = f"{'operation':<18}{'clients':>8}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'vs healthz':>12}{'errors':>8}"
    print(f"\n{header}{'CPU us/req: server':>20}{'generator':>11}")
    for figures in results:
        ratio = figures.rps / ceilings[figures.clients]
        print(
            f"{figures.operation:<18}{figures.clients:>8}{figures.rps:>10,.0f}{figures.p50_ms:>9.2f}"
            f"{figures.p99_ms:>9.2f}{ratio:>12.0%}{figures.errors:>8}{figures.server_cpu_us:>20.0f}"
            f"{figures.generator_cpu_us:>11.0f}"
        )
    print("\ntargets (data-key operations, 64 clients):")
    met = True
    for figures in results:
        if figures.operation not in DATA_KEY_OPERATIONS or figures.clients != 64:
            continue
        ratio = figures.rps / ceilings[64]
        checks = {
            f">= {TARGET_RPS:,} req/s": figures.rps >= TARGET_RPS,
            f">= {TARGET_RATIO:.0%} of healthz": ratio >= TARGET_RATIO,
            f"p99 <= {TARGET_P99_MS:.0f} ms": figures.p99_ms <= TARGET_P99_MS,
            "no errors": figures.errors == 0,
        }
        met &= all(checks.values())
        print(
            f"  {figures.operation:<16} "
            + "  ".join(f"{name}: {'ok' if ok else 'MISSED'}" for name, ok in checks.items())
        )
    return met


def compare(settings: list[str], results: dict[str, list[Figures]], ceilings: dict[str, dict[int, float]]) -> None:
    """The settings side by side, each against the first and against its own /healthz ceiling."""
    first = settings[0]
    width = max(len(setting) for setting in settings) + 2
    print(f"\nsettings side by side (ratio: to {first}; vs healthz: each to its own ceiling):")
    print(f"{'operation':<18}{'clients':>8}  {'setting':<{width}}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'vs hz':>7}"
          f"{'CPU us':>8}{'ratio':>8}")  # fmt: skip
    for index, base in enumerate(results[first]):
        for setting in settings:
            f = results[setting][index]
            share = f.rps / ceilings[setting][f.clients]
            print(f"{f.operation:<18}{f.clients:>8}  {setting:<{width}}{f.rps:>9,.0f}{f.p50_ms:>9.2f}{f.p99_ms:>9.2f}"
                  f"{share:>7.0%}{f.server_cpu_us:>8.0f}{f.rps / base.rps:>7.2f}x")  # fmt: skip


def print_breakdown(base: dict[str, Any], bodies: dict[str, dict[str, Any]], generators: int, server_pid: int) -> None:
    """Server CPU per request for requests that stop at successive stages of the request path."""
    stages = [
        ("GET /healthz (framework floor)", base, "healthz", {}),
        ("+ KMS route, error answer, audit, metrics", base, "no-such-operation", bodies["decrypt-datakey"]),
        ("+ body read, signature check (wrong SK)", {**base, "secret_key": "wrong"}, "decrypt-datakey",
         bodies["decrypt-datakey"]),
        ("+ parse, authorize, operation, answer", base, "decrypt-datakey", bodies["decrypt-datakey"]),
    ]  # fmt: skip
    print("\nserver CPU per request by stage (16 clients):")
    previous = 0.0
    for label, settings, operation, body in stages:
        figures = run_load(settings, operation, body, 16, generators, server_pid)
        print(f"  {label:<44}{figures.server_cpu_us:>6.0f} us  (+{figures.server_cpu_us - previous:.0f})")
        previous = figures.server_cpu_us


def print_profile(path: Path, lines: int) -> None:
    print(f"\nserver profile ({path}), top {lines} by own time:")
    pstats.Stats(str(path)).sort_stats("tottime").print_stats(lines)


@dataclass(frozen=True)
class Setting:
    """One server configuration of the run: its keystore engine and its workers setting."""

    keystore: str  # sqlite or postgres
    workers: str  # a number or auto

    @property
    def label(self) -> str:
        return f"{self.keystore} w={self.workers}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--duration", type=float, default=5.0, help="Measured seconds per run (default 5).")
    parser.add_argument("--warmup", type=float, default=1.0, help="Unmeasured seconds first (default 1).")
    parser.add_argument("--clients", type=int, nargs="+", default=[16, 64], help="Concurrent clients (16 64).")
    parser.add_argument("--generators", type=int, default=1, help="Python generator processes (default 1).")
    add_generator_option(parser)
    parser.add_argument("--operations", nargs="+", default=list(OPERATIONS[1:]), choices=OPERATIONS[1:])
    parser.add_argument(
        "--workers", nargs="+", default=["1", "auto"], help="Server worker settings to compare (default: 1 auto)."
    )
    parser.add_argument(
        "--keystores",
        nargs="+",
        default=["sqlite"],
        choices=("sqlite", "postgres"),
        help="Keystore engines to compare, each with every workers setting (postgres: a throwaway Debian "
        "PostgreSQL 15 on loopback, kubekms.devenv.postgres).",
    )
    parser.add_argument(
        "--pin", action="store_true", help="Pin the server to CPU 0 and the generators to the other CPUs."
    )
    parser.add_argument("--profile-server", type=Path, default=None, help="Run the server under cProfile to FILE.")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="Also split the server's CPU per request into stages (requests that stop early, 16 clients).",
    )
    parser.add_argument("--skip-aws", action="store_true", help="Skip the AWS wire vs peers runs (aws_bench.py).")
    parser.add_argument("--skip-gcp", action="store_true", help="Skip the Cloud KMS gRPC runs (gcp_bench.py).")
    args = parser.parse_args()
    if args.worker:
        worker_main()
        return
    for setting in args.workers:
        if setting != "auto" and not (setting.isdigit() and int(setting) >= 1):
            parser.error(f"--workers: {setting!r} is neither a number >= 1 nor auto")
    workers = ["1"] if args.profile_server else args.workers  # cProfile sees one process only
    settings = [Setting(keystore, setting) for keystore in args.keystores for setting in workers]
    wrk = wrk_binary() if args.generator == "wrk" else None
    print(
        f"kubekms server bench: {os.cpu_count()} CPUs, generator {'wrk (pre-signed requests)' if wrk else 'python'}, "
        f"{args.duration:g} s per run, settings {' vs '.join(s.label for s in settings)}, {interpreter()}"
    )
    results: dict[str, list[Figures]] = {}
    ceilings: dict[str, dict[int, float]] = {}
    met = True
    with contextlib.ExitStack() as stack:
        databases = PostgresDatabases(stack) if "postgres" in args.keystores else None
        # the AWS peers and the gRPC wire once: on the first setting that runs as deployed (workers auto,
        # the default: local-kms uses both cores too), else on the first setting
        peers_setting = next((setting for setting in settings if setting.workers == "auto"), settings[0])
        for setting in settings:
            print(f"{setting.label}:")
            peers = setting is peers_setting
            url_file = databases.new_url_file() if databases and setting.keystore == "postgres" else None
            results[setting.label], ceilings[setting.label] = run_setting(args, setting, wrk, url_file, peers)
            print(f"\n== {setting.label}")  # printed as soon as measured: a later failure loses nothing
            met &= report(results[setting.label], ceilings[setting.label])
    if len(settings) > 1:
        compare([s.label for s in settings], results, ceilings)
    if args.profile_server:
        print_profile(args.profile_server, 30)
    sys.exit(0 if met else 1)


class PostgresDatabases:
    """A throwaway PostgreSQL for the run (kubekms.devenv.postgres) and a fresh database for each server setting."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        from kubekms.devenv.postgres import postgres

        self._server = stack.enter_context(postgres())
        self._directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kubekms-bench-pg-")))
        self._count = 0

    def new_url_file(self) -> Path:
        """A new empty database; its URL in a file only we can read (the server's ``database_url_file``)."""
        import psycopg

        self._count += 1
        name = f"bench{self._count}"
        with psycopg.connect(self._server.url, autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        url_file = self._directory / f"{name}-url"
        url_file.touch(mode=0o600)
        url_file.write_text(self._server.database_url(name))
        return url_file


def run_setting(args: argparse.Namespace, setting: Setting, wrk: str | None, database_url_file: Path | None,
                peers: bool) -> tuple[list[Figures], dict[int, float]]:  # fmt: skip
    """Every run against one fresh server with this setting; with ``peers``, the AWS and gRPC sections too."""
    from gcp_bench import gcp_bench_server, run_gcp_section

    with (
        tempfile.TemporaryDirectory(prefix="kubekms-bench-") as directory,
        gcp_bench_server(Path(directory), setting.workers, database_url_file=database_url_file) as gcp,
    ):
        server = gcp.server
        bodies = asyncio.run(prepare(server))
        profiled = profiled_restart(server, Path(directory), args.profile_server) if args.profile_server else None
        server_pid = profiled.process.pid if profiled and profiled.process else server.pid
        assert server_pid is not None
        credentials = Credentials.from_file(server.credentials_file("admin"))
        cpu_count = os.cpu_count() or 1
        if args.pin and cpu_count > 1:
            os.sched_setaffinity(server_pid, {0})  # the workers started already keep their own affinity
        base: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": server.port,
            "project_id": server.project_id,
            "access_key": credentials.access_key,
            "secret_key": credentials.secret_key,
            "warmup": args.warmup,
            "duration": args.duration,
        }
        if args.pin and cpu_count > 1:
            base["cpus"] = list(range(1, cpu_count))
        results: list[Figures] = []
        ceilings: dict[int, float] = {}
        for operation in ("healthz", *args.operations):
            for clients in args.clients:
                figures = run_load(base, operation, bodies[operation], clients, args.generators, server_pid, wrk)
                results.append(figures)
                if operation == "healthz":
                    ceilings[clients] = figures.rps
                print(f"  {operation} x{clients}: {figures.rps:,.0f} req/s", flush=True)
        if args.breakdown:
            print_breakdown(base, bodies, args.generators, server_pid)
        if peers and not args.skip_aws:  # the AWS KMS wire, and the same calls on moto and local-kms
            from aws_bench import run_aws_section

            run_aws_section(server, clients=args.clients, generators=args.generators, warmup=args.warmup,
                            duration=args.duration, wrk=wrk)  # fmt: skip
        if peers and not args.skip_gcp:  # the Cloud KMS gRPC wire of the same server
            run_gcp_section(gcp, server_pid, clients=args.clients, warmup=args.warmup, duration=args.duration)
        if profiled is not None:
            profiled.stop()
    return results, ceilings


if __name__ == "__main__":
    main()
