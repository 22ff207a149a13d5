"""The web console's key list with 10,000 keys: ``python bench/console_bench.py [--keys N] [--requests N]``.

Fills one project of a fresh state directory with ``--keys`` keys through the local keystore
(before the server starts), starts a real ``kubekms server``, signs in to the console over
HTTP and times GET of the key list: the first page (50 and 1,000 keys per page), the last page
(deep paging), a find by alias and a key's page. Times are measured at the client on loopback
(one connection, kept alive), so they include HTTP and are an upper bound of the server time.
The audit log is filled first with ``--audit-mb`` of other keys' lines, so the key page's
"created by" lookup reads the whole window it searches (8 MiB) and finds nothing: its worst case.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

from kubekms.devenv.kmsserver import KMSServer
from kubekms.providers import BackendConfig
from kubekms.providers.local import open_backend

PROJECT = "bench"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "console"))
from console_harness import ConsoleHttp  # noqa: E402


def fill_audit_log(path: Path, megabytes: float) -> int:
    """Lines of describe-key calls on other keys, as the server writes them; how many."""
    line = json.dumps({"seq": 0, "prev": "0" * 64, "time": "2026-01-01T00:00:00.000Z", "principal": "admin",
                       "project": PROJECT, "operation": "describe-key", "key_id": str(uuid.uuid4()), "result": "OK",
                       "status": 200, "request_id": "0" * 32}, separators=(",", ":")).encode() + b"\n"  # fmt: skip
    count = int(megabytes * 1024 * 1024 / len(line))
    path.write_bytes(line * count)
    return count


async def fill(state_dir: Path, keys: int) -> str:
    backend = await open_backend(BackendConfig(provider="local", project_id=PROJECT, state_dir=state_dir, init=True,
                                               cmk_limit=keys + 10))  # fmt: skip
    try:
        last = ""
        for number in range(keys):
            last = (await backend.create_key(f"key-{number:05d}")).key_id
        return last
    finally:
        await backend.close()


def timed(client: ConsoleHttp, path: str, count: int) -> tuple[float, float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        answer = client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        assert answer.status_code in (200, 303), (path, answer.status_code)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--audit-mb", type=float, default=8.0)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        server = KMSServer(Path(folder), project_id=PROJECT, cmk_limit=arguments.keys + 10)
        started = time.perf_counter()
        last_key = asyncio.run(fill(Path(folder) / "keystore" / PROJECT, arguments.keys))
        print(f"filled {arguments.keys} keys in {time.perf_counter() - started:.1f} s")
        lines = fill_audit_log(server.audit_log, arguments.audit_mb)
        print(f"audit log: {lines} lines ({arguments.audit_mb:g} MiB) of other keys")
        server.start()
        try:
            credentials = yaml.safe_load(server.credentials_file("admin").read_text())
            client = ConsoleHttp.signed_in(server.endpoint, credentials["access_key"], credentials["secret_key"])
            last_page = (arguments.keys - 1) // 50 * 50
            cases = {
                "key list, first 50": f"/console/p/{PROJECT}/keys",
                "key list, first 1000": f"/console/p/{PROJECT}/keys?limit=1000",
                f"key list, 50 from {last_page}": f"/console/p/{PROJECT}/keys?marker={last_page}",
                "key list, 50 enabled": f"/console/p/{PROJECT}/keys?state=enabled",
                "find by alias (303)": f"/console/p/{PROJECT}/keys?q=key-00042",
                "key page": f"/console/p/{PROJECT}/keys/{last_key}",
            }
            print(f"{'page':<28} {'p50 ms':>8} {'p99 ms':>8}   ({arguments.requests} requests each)")
            for name, path in cases.items():
                count = arguments.requests if "1000" not in name else max(arguments.requests // 4, 10)
                p50, p99 = timed(client, path, count)
                print(f"{name:<28} {p50:8.1f} {p99:8.1f}")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
