"""The AWS KMS wire of the kubekms server against moto's server, same calls, same run: ``python bench/aws_bench.py``.

Starts a real ``kubekms server`` (or uses the one ``server_bench.py`` started) and moto's server
(``moto[server]``, a separate process), creates a key on each with boto3, then drives
``TrentService.GenerateDataKey`` and ``TrentService.Decrypt`` at 16 and 64 concurrent clients
against each and prints requests/s, p50 and p99 and the ratio kubekms / moto.

The generator runs in separate processes: aiohttp client sessions, each request signed afresh
with botocore's SigV4 signer (the servers check X-Amz-Date). moto's server (werkzeug) closes the
connection after every answer, so the generator reconnects when it must; kubekms keeps
connections alive. Both are measured by the same generator code.

local-kms (github.com/nsmithuk/local-kms, a Go AWS KMS emulator that checks no signature) is a
third target when ``go install`` can build it from the Go module proxy into
``~/.cache/kubekms/bench/`` (for the bench only); when the build fails its column is skipped
with a message.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from load_support import timed_calls
from server_bench import cpu_seconds
from wrk_load import PresignedRequest, add_generator_option, run_wrk, wrk_binary

from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.motoserver import MotoServer, moto_server
from kubekms.devenv.processes import ManagedProcess, free_port
from kubekms.providers import Credentials

REGION = "us-east-1"
OPERATIONS = ("GenerateDataKey", "Decrypt")
LOCAL_KMS_MODULE = "github.com/nsmithuk/local-kms@latest"
LOCAL_KMS_BIN_DIR = Path.home() / ".cache" / "kubekms" / "bench"


@dataclass(frozen=True)
class Target:
    name: str
    endpoint: str
    access_key: str
    secret_key: str
    pid: int


@dataclass(frozen=True)
class AwsFigures:
    target: str
    operation: str
    clients: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_cpu_us: float  # server CPU time (user + system) per request, warm-up included


# ----------------------------------------------------------------------------- the generator (worker process)


def signed_request(job: dict[str, Any]) -> tuple[dict[str, str], bytes]:
    body = json.dumps(job["body"], separators=(",", ":")).encode()
    request = AWSRequest(
        method="POST",
        url=job["endpoint"] + "/",
        data=body,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"TrentService.{job['operation']}"},
    )
    SigV4Auth(BotoCredentials(job["access_key"], job["secret_key"]), "kms", REGION).add_auth(request)
    return dict(request.headers.items()), body


async def drive(job: dict[str, Any]) -> dict[str, Any]:
    connector = aiohttp.TCPConnector(limit=job["clients"])
    async with aiohttp.ClientSession(connector=connector) as session:

        async def call(index: int) -> bool:
            headers, body = signed_request(job)
            async with session.post(job["endpoint"] + "/", data=body, headers=headers) as answer:
                await answer.read()
                return answer.status == 200

        return await timed_calls(job["clients"], job["start_at"], job["warmup"], job["duration"], call)


def worker_main() -> None:
    json.dump(asyncio.run(drive(json.loads(sys.stdin.read()))), sys.stdout)


# ----------------------------------------------------------------------------- the conductor


def presigned(target: Target, operation: str, body: dict[str, Any]) -> PresignedRequest:
    """One request signed now with botocore, for wrk to replay (valid 15 minutes)."""
    job = {"endpoint": target.endpoint, "access_key": target.access_key, "secret_key": target.secret_key,
           "operation": operation, "body": body}  # fmt: skip
    headers, data = signed_request(job)
    return PresignedRequest("POST", "/", {**headers, "Host": urlsplit(target.endpoint).netloc}, data)


def run_load(
    target: Target,
    operation: str,
    body: dict[str, Any],
    clients: int,
    generators: int,
    warmup: float,
    duration: float,
    wrk: str | None = None,
) -> AwsFigures:
    """Driven by wrk replaying a pre-signed request when ``wrk`` is its path, else by the Python generator."""
    if wrk is not None:
        return _run_wrk(wrk, target, operation, body, clients, warmup, duration)
    cpu_before = cpu_seconds(target.pid)
    start_at = time.time() + 1.0
    shares = [clients // generators + (1 if i < clients % generators else 0) for i in range(generators)]
    processes = []
    for share in shares:
        job = {
            "endpoint": target.endpoint,
            "access_key": target.access_key,
            "secret_key": target.secret_key,
            "operation": operation,
            "body": body,
            "clients": share,
            "start_at": start_at,
            "warmup": warmup,
            "duration": duration,
        }
        process = subprocess.Popen(
            [sys.executable, __file__, "--worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert process.stdin is not None
        process.stdin.write(json.dumps(job))
        process.stdin.close()
        processes.append(process)
    latencies: list[float] = []
    errors = sent = 0
    for process in processes:
        assert process.stdout is not None
        result = json.loads(process.stdout.read())
        if process.wait() != 0:
            raise SystemExit(f"a load generator failed (exit {process.returncode})")
        latencies += result["latencies"]
        errors += result["errors"]
        sent += result["sent"]
    server_cpu_us = (cpu_seconds(target.pid) - cpu_before) / max(sent, 1) * 1e6
    if not latencies:
        raise SystemExit(f"{target.name} {operation}: no request completed")
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return AwsFigures(
        target.name,
        operation,
        clients,
        len(latencies) / duration,
        cuts[49] * 1000,
        cuts[98] * 1000,
        errors,
        server_cpu_us,
    )


def _run_wrk(
    wrk: str, target: Target, operation: str, body: dict[str, Any], clients: int, warmup: float, duration: float
) -> AwsFigures:
    cpu: list[float] = []
    result = run_wrk(wrk, target.endpoint, presigned(target, operation, body), clients, warmup=warmup,
                     duration=duration, between=lambda: cpu.append(cpu_seconds(target.pid)))  # fmt: skip
    server_cpu_us = (cpu_seconds(target.pid) - cpu[0]) / max(result.requests, 1) * 1e6
    return AwsFigures(target.name, operation, clients, result.rps, result.p50_ms, result.p99_ms, result.errors,
                      server_cpu_us)  # fmt: skip


def prepare(target: Target) -> dict[str, dict[str, Any]]:
    """A key and a ciphertext to decrypt, made with boto3; the JSON body each operation sends."""
    kms = boto3.client(
        "kms",
        endpoint_url=target.endpoint,
        region_name=REGION,
        aws_access_key_id=target.access_key,
        aws_secret_access_key=target.secret_key,
    )
    key_id = kms.create_key(Description="bench")["KeyMetadata"]["KeyId"]
    blob = kms.generate_data_key(KeyId=key_id, NumberOfBytes=32)["CiphertextBlob"]
    return {
        "GenerateDataKey": {"KeyId": key_id, "NumberOfBytes": 32},
        "Decrypt": {"KeyId": key_id, "CiphertextBlob": base64.b64encode(blob).decode()},
    }


def kubekms_target(server: KMSServer) -> Target:
    credentials = Credentials.from_file(server.credentials_file("admin"))
    assert server.pid is not None
    return Target("kubekms", server.endpoint, credentials.access_key, credentials.secret_key, server.pid)


def moto_target(moto: MotoServer) -> Target:
    return Target("moto", moto.endpoint, moto.access_key, moto.secret_key, moto.pid)


def local_kms_binary() -> Path | None:
    """local-kms built from the Go module proxy (once, cached); None, with a message, when it cannot be built."""
    binary = LOCAL_KMS_BIN_DIR / "local-kms"
    if binary.exists():
        return binary
    LOCAL_KMS_BIN_DIR.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["go", "install", LOCAL_KMS_MODULE], env={**os.environ, "GOBIN": str(LOCAL_KMS_BIN_DIR)},
                       check=True, capture_output=True, timeout=900)  # fmt: skip
    except (OSError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", b"") or b""
        print(f"local-kms column skipped: go install {LOCAL_KMS_MODULE} failed: {error} {detail.decode()[-500:]}")
        return None
    return binary


@contextlib.contextmanager
def local_kms(directory: Path) -> Iterator[Target | None]:
    binary = local_kms_binary()
    if binary is None:
        yield None
        return
    port = free_port()
    env = {**os.environ, "PORT": str(port), "KMS_REGION": REGION, "KMS_ACCOUNT_ID": "111122223333",
           "KMS_DATA_PATH": str(directory / "local-kms-data")}  # fmt: skip
    process = ManagedProcess("local-kms", [str(binary)], directory / "local-kms.log", env=env)
    process.start()
    try:
        process.wait_until(lambda: _answers(port), 30, "listening")
        assert process.process is not None
        # local-kms checks no signature: any key pair does
        yield Target("local-kms", f"http://127.0.0.1:{port}", "AKIDLOCALKMS", "any-secret", process.process.pid)
    finally:
        process.stop()


def _answers(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def run_aws_section(
    server: KMSServer,
    *,
    clients: Sequence[int] = (16, 64),
    generators: int = 1,
    warmup: float = 1.0,
    duration: float = 5.0,
    wrk: str | None = None,
) -> list[AwsFigures]:
    """The AWS-wire runs against ``server``, a moto server and local-kms (when built) started here; prints the table."""
    with contextlib.ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kubekms-peers-")))
        moto = stack.enter_context(moto_server(directory / "moto.log"))
        targets = [kubekms_target(server), moto_target(moto)]
        local = stack.enter_context(local_kms(directory))
        if local is not None:
            targets.append(local)
        bodies = {target.name: prepare(target) for target in targets}
        ceilings = healthz_ceilings(wrk, targets[0], clients, warmup, duration) if wrk else {}
        results: list[AwsFigures] = []
        for operation in OPERATIONS:
            for count in clients:
                for target in targets:
                    figures = run_load(
                        target, operation, bodies[target.name][operation], count, generators, warmup, duration, wrk
                    )
                    results.append(figures)
                    print(f"  aws:{operation} x{count} on {target.name}: {figures.rps:,.0f} req/s", flush=True)
    report(results, ceilings)
    return results


def healthz_ceilings(
    wrk: str, target: Target, clients: Sequence[int], warmup: float, duration: float
) -> dict[int, float]:
    """Our server's own ceiling: wrk on GET /healthz (the HTTP layer and the event loop, nothing else)."""
    request = PresignedRequest("GET", "/healthz", {"Host": urlsplit(target.endpoint).netloc}, b"")
    ceilings = {}
    for count in clients:
        ceilings[count] = run_wrk(wrk, target.endpoint, request, count, warmup=warmup, duration=duration).rps
        print(f"  GET /healthz x{count} on {target.name}: {ceilings[count]:,.0f} req/s", flush=True)
    return ceilings


# issue 15's targets for the AWS wire's data-key operations (benchmarks, not timed tests)
TARGET_VS_LOCAL_KMS = 0.75
TARGET_VS_MOTO = 20.0
TARGET_VS_HEALTHZ = 0.6


def report(results: Sequence[AwsFigures], ceilings: Mapping[int, float]) -> None:
    by_key = {(f.target, f.operation, f.clients): f for f in results}
    peers = [name for name in dict.fromkeys(f.target for f in results) if name != "kubekms"]
    header = f"\n{'AWS wire':<18}{'clients':>8}{'kubekms req/s':>15}{'p50 ms':>8}{'p99 ms':>8}{'CPU us':>8}"
    header += f"{'vs healthz':>11}" if ceilings else ""
    for peer in peers:
        header += f"{f'{peer} req/s':>17}{'p50 ms':>8}{'p99 ms':>8}{'CPU us':>8}{f'kubekms/{peer}':>19}"
    print(header + f"{'errors':>8}")
    misses: list[str] = []
    most_clients = max(f.clients for f in results)
    for (target, operation, clients), ours in by_key.items():
        if target != "kubekms":
            continue
        line = f"{operation:<18}{clients:>8}{ours.rps:>15,.0f}{ours.p50_ms:>8.2f}{ours.p99_ms:>8.2f}"
        line += f"{ours.server_cpu_us:>8.0f}"
        if clients in ceilings:
            line += f"{ours.rps / ceilings[clients]:>11.0%}"
            if ours.rps < TARGET_VS_HEALTHZ * ceilings[clients]:
                misses.append(f"{operation} x{clients}: {ours.rps / ceilings[clients]:.0%} of /healthz")
        errors = ours.errors
        for peer in peers:
            theirs = by_key[(peer, operation, clients)]
            line += f"{theirs.rps:>17,.0f}{theirs.p50_ms:>8.2f}{theirs.p99_ms:>8.2f}{theirs.server_cpu_us:>8.0f}"
            line += f"{ours.rps / theirs.rps:>18.2f}x"
            errors += theirs.errors
            wanted = {"local-kms": TARGET_VS_LOCAL_KMS, "moto": TARGET_VS_MOTO}.get(peer)
            if wanted is not None and ours.rps < wanted * theirs.rps:
                misses.append(f"{operation} x{clients}: {ours.rps / theirs.rps:.2f}x {peer} (< {wanted:g}x)")
            if peer == "local-kms" and clients == most_clients and ours.p99_ms > theirs.p99_ms:
                misses.append(f"{operation} x{clients}: p99 {ours.p99_ms:.2f} ms > local-kms {theirs.p99_ms:.2f} ms")
        print(line + f"{errors:>8}")
    print("targets: " + ("all met" if not misses else "MISSED " + "; ".join(misses)))


@contextlib.contextmanager
def own_server() -> Iterator[KMSServer]:
    """One server process, no console (the bench server of gcp_bench.py: same launcher, same settings)."""
    from gcp_bench import gcp_bench_server

    with tempfile.TemporaryDirectory(prefix="kubekms-bench-") as directory, \
            gcp_bench_server(Path(directory), "1") as gcp:  # fmt: skip
        yield gcp.server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--duration", type=float, default=5.0, help="Measured seconds per run (default 5).")
    parser.add_argument("--warmup", type=float, default=1.0, help="Unmeasured seconds first (default 1).")
    parser.add_argument("--clients", type=int, nargs="+", default=[16, 64], help="Concurrent clients (16 64).")
    parser.add_argument("--generators", type=int, default=1, help="Python generator processes (default 1).")
    add_generator_option(parser)
    args = parser.parse_args()
    if args.worker:
        worker_main()
        return
    wrk = wrk_binary() if args.generator == "wrk" else None
    print(f"AWS wire bench: {os.cpu_count()} CPUs, generator {'wrk' if wrk else 'python'}, {args.duration:g} s/run")
    with own_server() as server:
        results = run_aws_section(server, clients=args.clients, generators=args.generators, warmup=args.warmup,
                                  duration=args.duration, wrk=wrk)  # fmt: skip
    sys.exit(0 if all(f.errors == 0 for f in results) else 1)


if __name__ == "__main__":
    main()
