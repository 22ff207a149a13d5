"""Hostile requests against a real ``kubekms server``: ``python bench/fuzz.py [-n 100000]``.

Starts a server process (the launcher, a fresh state directory), makes the fixture key, then
sends N requests drawn from the fuzz suite's strategies (``tests/fuzz/fuzz_requests.py``:
every operation of the v1.0 and AWS JSON 1.1 wires, valid ones and ones with a broken
signature, header bytes, body, field format or path, and HTTP garbage) from ``--workers``
processes, each on its own keep-alive connection and random seed. Prints the answers by
status class and by kind of request, the violations (5xx, wrong successes, valid requests
refused, refusals without the wire's error code), whether the refused requests changed any
key, whether the server is still answering, and what its log holds (tracebacks, errors,
refusal lines written and suppressed). Exits 1 when any of these is not clean.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "fuzz"))

from fuzz_checks import FUZZER, PROJECT, prepare_target, snapshot, violations
from fuzz_http import Connection
from fuzz_requests import Target, any_case
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from kubekms.devenv.kmsserver import kms_server


def run_worker(job: tuple[Target, int, int]) -> tuple[Counter[str], list[str]]:
    """Send ``count`` drawn requests; count answers by class and kind, every violation by its first words."""
    target, count, worker_seed = job
    counts: Counter[str] = Counter()
    samples: list[str] = []
    connection = Connection(target.host, target.port)

    @seed(worker_seed)
    @settings(max_examples=count, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(data=st.data())
    def send(data: st.DataObject) -> None:
        case = data.draw(any_case(target))
        try:
            answer = connection.send(case.request)
        except OSError as error:
            counts[f"violation: no answer ({type(error).__name__})"] += 1
            connection.close()
            return
        kind = case.defect.split(":")[0] if case.defect else "valid"
        counts[f"status {answer.status // 100}xx"] += 1
        counts[f"kind {kind}"] += 1
        for violation in violations(case, answer):
            counts["violation: " + " ".join(violation.split()[:3])] += 1
            if len(samples) < 5:
                samples.append(f"{violation} <- {case.defect} {case.request}"[:2000])

    send()
    connection.close()
    return counts, samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--requests", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20261130)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kubekms-fuzz-") as tmp, kms_server(
        Path(tmp), principals=(FUZZER,), project_id=PROJECT
    ) as server:  # fmt: skip
        target = prepare_target(server)
        probe = Connection(target.host, target.port)
        before = snapshot(probe, target)
        probe.close()  # idle through the run, longer than the server's 75 s keep-alive: a fresh one after
        share = -(-args.requests // args.workers)
        jobs = [(target, min(share, args.requests - i * share), args.seed + i) for i in range(args.workers)]
        started = time.monotonic()
        with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
            results = pool.map(run_worker, jobs)
        counts = sum((result[0] for result in results), Counter())
        samples = [sample for result in results for sample in result[1]]
        elapsed = time.monotonic() - started
        unchanged = snapshot(probe, target) == before
        probe.close()
        with urllib.request.urlopen(f"{server.endpoint}/healthz", timeout=5) as answer:
            alive = server.running and answer.status == 200
        with urllib.request.urlopen(f"{server.endpoint}/metrics", timeout=5) as answer:
            metrics = answer.read().decode()
        log = Path(server.log).read_text(errors="replace")
    sent = sum(v for k, v in counts.items() if k.startswith("status "))
    print(f"requests sent: {sent} in {elapsed:.0f} s ({sent / elapsed:.0f}/s) from {args.workers} workers")
    for name in sorted(k for k in counts if not k.startswith("violation")):
        print(f"  {name:<22} {counts[name]:>8}")
    violation_total = sum(v for k, v in counts.items() if k.startswith("violation"))
    print(f"5xx answers:            {counts['status 5xx']}")
    print(f"wrong successes:        {counts['violation: wrong success:']}")
    print(f"violations in all:      {violation_total}")
    for name in sorted(k for k in counts if k.startswith("violation")):
        print(f"  {name:<40} {counts[name]:>8}")
    for sample in samples:
        print(f"  e.g. {sample}")
    tracebacks, errors = log.count("Traceback"), log.count('"level": "error"')
    print(f"server log: {tracebacks} tracebacks, {errors} error lines, "
          f"{log.count('request refused')} refusal lines, {len(log.splitlines())} lines in all")  # fmt: skip
    refused = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                  if line.startswith("kubekms_server_refused_requests_total{"))  # fmt: skip
    suppressed = next((line.rsplit(" ", 1)[1] for line in metrics.splitlines()
                       if line.startswith("kubekms_server_refusal_lines_suppressed_total ")), "?")  # fmt: skip
    print(f"metrics: {refused:.0f} refusals counted, {suppressed} refusal lines suppressed")
    print(f"keys unchanged by refused requests: {unchanged}; server alive and answering: {alive}")
    clean = violation_total == 0 and tracebacks == 0 and errors == 0 and unchanged and alive
    print("CLEAN" if clean else "NOT CLEAN")
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
