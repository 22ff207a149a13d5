"""The cheap load generator of the benches: wrk replaying one pre-signed HTTP request.

wrk (Debian's ``wrk``, C, one thread here) keeps ``clients`` connections busy with the same
request, formatted once in its Lua ``init``: the generator costs the server's cores far less
than any Python client. Requests are signed once, before the run: both wires accept a signature
for 15 minutes after its date (SigV4's X-Amz-Date, SDK-HMAC's X-Sdk-Date), so replaying it
within a bench run is what a client retrying the same call would send. If replay protection is
added one day, the benches must sign per request again (the Python generators do).

wrk has no warm-up: :func:`run_wrk` runs it once unmeasured first. When wrk is missing it is
installed with apt-get where that can work (root), else :func:`wrk_binary` returns None and
the bench falls back to its Python generator, saying so.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

# wrk prints this JSON line from done(): its own counters, latencies in microseconds
_LUA = """
local request_bytes = nil
init = function(args)
  request_bytes = wrk.format(%(method)s, %(path)s, %(headers)s, %(body)s)
end
request = function() return request_bytes end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%%d,"duration_us":%%d,"p50_us":%%d,"p99_us":%%d,"connect":%%d,"read":%%d,"write":%%d,'
    .. '"status":%%d,"timeout":%%d}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


@dataclass(frozen=True)
class PresignedRequest:
    method: str
    path: str
    headers: Mapping[str, str]  # Host included, exactly as signed
    body: bytes


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx/3xx answers, connect/read/write errors and timeouts
    requests: int
    generator_cpu_s: float


def wrk_binary() -> str | None:
    """wrk on PATH, installed from Debian's package when absent and we are root; None with a message otherwise."""
    found = shutil.which("wrk")
    if found is not None:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        result = subprocess.run(["apt-get", "install", "-y", "wrk"], capture_output=True, text=True, timeout=600)
        if result.returncode == 0 and shutil.which("wrk"):
            return shutil.which("wrk")
        print(f"wrk: apt-get install wrk failed: {result.stderr.strip()[-300:]}")
    print("wrk is not installed (Debian package wrk): using the Python generator instead")
    return None


def add_generator_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--generator",
        choices=("wrk", "python"),
        default="wrk",
        help="wrk replaying pre-signed requests (default; falls back to python when wrk is missing), or the Python "
        "generator signing every request",
    )


def _lua_string(value: str | bytes) -> str:
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    return "".join(c if c.isalnum() or c in " /-_.:=,;+" else f"\\{ord(c):03d}" for c in text).join('""')


def lua_script(request: PresignedRequest) -> str:
    # wrk.format adds Content-Length itself
    fields = [(k, v) for k, v in request.headers.items() if k.lower() != "content-length"]
    headers = "{" + ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in fields) + "}"
    return _LUA % {
        "method": _lua_string(request.method),
        "path": _lua_string(request.path),
        "headers": headers,
        "body": _lua_string(request.body) if request.body else "nil",
    }


def _run_once(binary: str, url: str, script: Path, clients: int, seconds: float) -> tuple[dict[str, int], float]:
    argv = [binary, "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "10s", "-s", str(script), url]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)  # counts children once reaped: wrk alone here
    process = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    stdout, stderr = process.stdout, process.stderr
    if process.returncode != 0:
        raise SystemExit(f"wrk failed (exit {process.returncode}): {stderr.strip()[-500:]}")
    line = next((text for text in reversed(stdout.splitlines()) if text.startswith("{")), None)
    if line is None:
        raise SystemExit(f"wrk printed no summary: {stdout[-500:]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return json.loads(line), cpu


def run_wrk(
    binary: str,
    base_url: str,
    request: PresignedRequest,
    clients: int,
    *,
    warmup: float,
    duration: float,
    between: Callable[[], None] = lambda: None,
) -> WrkResult:
    """``warmup`` seconds unmeasured, then ``duration`` measured; ``between`` runs in between (a CPU reading)."""
    with tempfile.TemporaryDirectory(prefix="kubekms-wrk-") as directory:
        script = Path(directory) / "request.lua"
        script.write_text(lua_script(request))
        url = base_url.rstrip("/") + request.path
        if warmup > 0:
            _run_once(binary, url, script, clients, warmup)
        between()
        summary, cpu = _run_once(binary, url, script, clients, duration)
    errors = sum(summary[name] for name in ("connect", "read", "write", "status", "timeout"))
    seconds = summary["duration_us"] / 1e6
    return WrkResult(
        rps=summary["requests"] / seconds,
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        errors=errors,
        requests=summary["requests"],
        generator_cpu_s=cpu,
    )
