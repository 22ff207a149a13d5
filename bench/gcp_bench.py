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
from pathlib import Path
from typing import Any

import grpc
import yaml
from google.auth import crypt
from google.auth import jwt as google_jwt
from google.cloud import kms_v1
from load_support import timed_calls
from server_bench import Figures, cpu_seconds

from kubekms.devenv.gcpserver import GcpServer, start_gcp_server

SERVICE = "/google.cloud.kms.v1.KeyManagementService/"
OPERATIONS = ("Encrypt", "Decrypt")
SCOPE = "https://www.googleapis.com/auth/cloudkms"


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
    async with grpc.aio.insecure_channel(job["target"]) as channel:
        rpc = channel.unary_unary(SERVICE + job["operation"])  # bytes in, bytes out: no (de)serialization here
        await rpc(request, metadata=metadata)  # connected before the clock starts

        async def call(index: int) -> bool:
            try:
                await rpc(request, metadata=metadata)
            except grpc.aio.AioRpcError:
                return False
            return True

        return await timed_calls(job["clients"], job["start_at"], job["warmup"], job["duration"], call)


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
             server_pid: int) -> Figures:  # fmt: skip
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
    return Figures(operation, clients, len(latencies) / duration, cuts[49] * 1000, cuts[98] * 1000,
                   figures["errors"], server_cpu_us, generator_cpu_us=0.0)  # fmt: skip


async def prepare(gcp: GcpServer) -> dict[str, bytes]:
    """A key ring, a crypto key and a ciphertext of it, made over the same gRPC API; each operation's request."""
    location = f"projects/{gcp.server.project_id}/locations/global"
    metadata = (("authorization", f"Bearer {bearer_token(str(gcp.key_file()))}"),)
    async with grpc.aio.insecure_channel(gcp.endpoint) as channel:

        async def rpc(method: str, request: Any, answer_type: Any) -> Any:
            answer = await channel.unary_unary(SERVICE + method)(type(request).serialize(request), metadata=metadata)
            return answer_type.deserialize(answer)

        ring = await rpc("CreateKeyRing", kms_v1.CreateKeyRingRequest(parent=location, key_ring_id="bench"),
                         kms_v1.KeyRing)  # fmt: skip
        purpose = kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT
        create = kms_v1.CreateCryptoKeyRequest(parent=ring.name, crypto_key_id="bench",
                                               crypto_key=kms_v1.CryptoKey(purpose=purpose))  # fmt: skip
        key = await rpc("CreateCryptoKey", create, kms_v1.CryptoKey)
        encrypt = kms_v1.EncryptRequest(name=key.name, plaintext=os.urandom(32))
        answer = await rpc("Encrypt", encrypt, kms_v1.EncryptResponse)
    decrypt = kms_v1.DecryptRequest(name=key.name, ciphertext=answer.ciphertext)
    return {"Encrypt": kms_v1.EncryptRequest.serialize(encrypt), "Decrypt": kms_v1.DecryptRequest.serialize(decrypt)}


def run_gcp_section(gcp: GcpServer, server_pid: int, *, clients: Sequence[int] = (16, 64), warmup: float = 1.0,
                    duration: float = 5.0) -> list[Figures]:  # fmt: skip
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
