"""Encrypt and Decrypt over the server's Cloud KMS gRPC API: ``python bench/gcp_bench.py`` (issue 16).

Also run by ``server_bench.py`` on the same server as the v1.0 and AWS wires, so the three wires
stand side by side in one run. The generator is a separate process with one grpc.aio channel
(HTTP/2, the way Google's client libraries call) and ``clients`` concurrent callers; requests are
serialized once and sent as bytes, and the Bearer JWT (self-signed with the service account's
key, one hour) is made once: the server verifies a token once and then finds it in its cache,
as it would for a real client's token. What is left per call is gRPC's own work on both sides.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import yaml
from google.auth import crypt
from google.auth import jwt as google_jwt
from google.cloud import kms_v1
from server_bench import cpu_seconds

from kubekms.devenv.gcpserver import GcpServer, start_gcp_server
from kubekms.providers import open_backend

SERVICE = "/google.cloud.kms.v1.KeyManagementService/"
OPERATIONS = ("Encrypt", "Decrypt")
SCOPE = "https://www.googleapis.com/auth/cloudkms"


@dataclass(frozen=True)
class GcpFigures:
    operation: str
    clients: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_cpu_us: float  # the whole server's CPU per call (the supervisor and every worker), warm-up included


# ----------------------------------------------------------------------------- the generator (worker process)


def bearer_token(key_file: str) -> str:
    info = json.loads(Path(key_file).read_text())
    now = int(time.time())
    claims = {"iss": info["client_email"], "sub": info["client_email"], "scope": SCOPE, "iat": now, "exp": now + 3600}
    signer = crypt.RSASigner.from_service_account_info(info)  # type: ignore[no-untyped-call]
    token: bytes = google_jwt.encode(signer, claims)  # type: ignore[no-untyped-call]
    return token.decode()


async def drive(job: dict[str, Any]) -> dict[str, Any]:
    metadata = (("authorization", f"Bearer {bearer_token(job['key_file'])}"),)
    request = bytes.fromhex(job["request"])
    latencies: list[float] = []
    errors = sent = 0
    async with grpc.aio.insecure_channel(job["target"]) as channel:
        call = channel.unary_unary(SERVICE + job["operation"])  # bytes in, bytes out: no (de)serialization here
        await call(request, metadata=metadata)  # connected before the clock starts
        await asyncio.sleep(max(0.0, job["start_at"] - time.time()))
        measure_from = time.perf_counter() + job["warmup"]
        measure_until = measure_from + job["duration"]

        async def client() -> None:
            nonlocal errors, sent
            while True:
                began = time.perf_counter()
                if began >= measure_until:
                    return
                sent += 1
                try:
                    await call(request, metadata=metadata)
                    failed = False
                except grpc.aio.AioRpcError:
                    failed = True
                ended = time.perf_counter()
                if measure_from <= began and ended <= measure_until:
                    latencies.append(ended - began)
                    errors += failed

        await asyncio.gather(*(client() for _ in range(job["clients"])))
    return {"latencies": latencies, "errors": errors, "sent": sent}


def worker_main() -> None:
    job = json.loads(sys.stdin.read())
    try:
        import uvloop

        result = uvloop.run(drive(job))
    except ImportError:
        result = asyncio.run(drive(job))
    json.dump(result, sys.stdout)


# ----------------------------------------------------------------------------- the conductor


def run_load(gcp: GcpServer, operation: str, request: bytes, clients: int, warmup: float, duration: float,
             server_pid: int) -> GcpFigures:  # fmt: skip
    job = {"target": gcp.endpoint, "key_file": str(gcp.key_file()), "operation": operation, "request": request.hex(),
           "clients": clients, "start_at": time.time() + 1.0, "warmup": warmup, "duration": duration}  # fmt: skip
    cpu_before = cpu_seconds(server_pid)
    result = subprocess.run([sys.executable, __file__, "--worker"], input=json.dumps(job), capture_output=True,
                            text=True, timeout=duration + warmup + 120)  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"the gRPC load generator failed: {result.stderr[-800:]}")
    figures = json.loads(result.stdout)
    latencies = figures["latencies"]
    if not latencies:
        raise SystemExit(f"gRPC {operation}: no call completed")
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    server_cpu_us = (cpu_seconds(server_pid) - cpu_before) / max(figures["sent"], 1) * 1e6
    return GcpFigures(operation, clients, len(latencies) / duration, cuts[49] * 1000, cuts[98] * 1000,
                      figures["errors"], server_cpu_us)  # fmt: skip


async def prepare(gcp: GcpServer) -> dict[str, bytes]:
    """A crypto key made through provider gcp, a ciphertext of it; each operation's serialized request."""
    config = gcp.backend_config()
    backend = await open_backend(config)
    try:
        key = await backend.create_key("bench")
    finally:
        await backend.close()
    name = f"projects/{config.project_id}/locations/global/keyRings/{config.key_ring}/cryptoKeys/{key.key_id}"
    plaintext = os.urandom(32)
    async with grpc.aio.insecure_channel(gcp.endpoint) as channel:
        encrypt = channel.unary_unary(SERVICE + "Encrypt")
        metadata = (("authorization", f"Bearer {bearer_token(str(gcp.key_file()))}"),)
        encrypt_request = kms_v1.EncryptRequest.serialize(kms_v1.EncryptRequest(name=name, plaintext=plaintext))
        answer = kms_v1.EncryptResponse.deserialize(await encrypt(encrypt_request, metadata=metadata))
    decrypt_request = kms_v1.DecryptRequest(name=name, ciphertext=answer.ciphertext)
    return {"Encrypt": encrypt_request, "Decrypt": kms_v1.DecryptRequest.serialize(decrypt_request)}


def run_gcp_section(gcp: GcpServer, server_pid: int, *, clients: Sequence[int] = (16, 64), warmup: float = 1.0,
                    duration: float = 5.0) -> list[GcpFigures]:  # fmt: skip
    requests = asyncio.run(prepare(gcp))
    results = []
    for operation in OPERATIONS:
        for count in clients:
            figures = run_load(gcp, operation, requests[operation], count, warmup, duration, server_pid)
            results.append(figures)
            print(f"  gcp:{operation} x{count}: {figures.rps:,.0f} calls/s", flush=True)
    print(f"\n{'Cloud KMS gRPC':<18}{'clients':>8}{'calls/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'CPU us':>8}{'errors':>8}")
    for f in results:
        print(f"{f.operation:<18}{f.clients:>8}{f.rps:>10,.0f}{f.p50_ms:>9.2f}{f.p99_ms:>9.2f}{f.server_cpu_us:>8.0f}"
              f"{f.errors:>8}")  # fmt: skip
    return results


@contextlib.contextmanager
def gcp_bench_server(directory: Path, workers: str, *, database_url_file: Path | None = None) -> Iterator[GcpServer]:
    """A real ``kubekms server`` with its Cloud KMS gRPC listener, ``workers`` (a number or auto), no console."""
    gcp = start_gcp_server(directory)
    gcp.server.stop()  # restarted with the bench's settings (same principals, keys, ports)
    config_path = directory / "server.yaml"
    config = yaml.safe_load(config_path.read_text())
    config.update({"workers": workers if workers == "auto" else int(workers), "console": {"enabled": False}})
    if database_url_file is not None:
        config["database_url_file"] = str(database_url_file)
    config_path.write_text(yaml.safe_dump(config))
    gcp.server.start()
    try:
        with grpc.insecure_channel(gcp.endpoint) as channel:  # /healthz may answer before the gRPC listener
            grpc.channel_ready_future(channel).result(timeout=60)
        yield gcp
    finally:
        gcp.server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--duration", type=float, default=5.0, help="Measured seconds per run (default 5).")
    parser.add_argument("--warmup", type=float, default=1.0, help="Unmeasured seconds first (default 1).")
    parser.add_argument("--clients", type=int, nargs="+", default=[16, 64], help="Concurrent callers (16 64).")
    parser.add_argument("--workers", default="1", help="The server's workers setting (default 1).")
    args = parser.parse_args()
    if args.worker:
        worker_main()
        return
    with tempfile.TemporaryDirectory(prefix="kubekms-bench-") as directory, \
            gcp_bench_server(Path(directory), args.workers) as gcp:  # fmt: skip
        assert gcp.server.pid is not None
        results = run_gcp_section(gcp, gcp.server.pid, clients=args.clients, warmup=args.warmup,
                                  duration=args.duration)  # fmt: skip
    sys.exit(0 if all(f.errors == 0 for f in results) else 1)


if __name__ == "__main__":
    main()
