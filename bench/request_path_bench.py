"""Server CPU of one AWS-wire request, stage by stage, in-process: ``python bench/request_path_bench.py``.

No HTTP: one signed GenerateDataKey and one signed Decrypt (signed by botocore's SigV4Auth, as boto3
signs) go through the server's own pieces on a real LocalBackend keystore in a temporary directory:

- request id      the id every request gets (Exchange.request_id)
- sigv4           the SigV4 check of the headers and body (SigV4Verifier.verify)
- json body       the body parsed by the strict parser (inputs.json_object)
- authorise       principal lookup, its operation check and the key's policy / key list / grants
- ... by alias    the same for a principal whose key list names the key by its alias
- region          the AWS wire's check that the key is seen from the request's region
- operation       the operation's handler on the backend (fields, base64, AES-GCM, keystore read)
- render          the answer as JSON bytes
- audit           one audit record, plus its share of a flush of 200 records (hash chain, write)
- metrics         one observe (request counter + latency histogram) with its share of a flush,
                  prometheus_client single-process
- metrics mp      the same in multiprocess mode (what ``workers: auto`` runs: mmap'd value files)
- pipeline        the whole Pipeline.handle (the server's request path below HTTP), multiprocess metrics

Each stage runs in batches; the batches of all stages are interleaved round after round, and a
stage's figure is the median over rounds of its per-call time (µs). ``--rounds`` and ``--batch``
trade precision for time (defaults: about 20 s on a quiet 2-core machine).

``--profile FILE`` also runs the whole pipeline under cProfile for a few seconds and prints the
top functions by own time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import cProfile
import json
import os
import pstats
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from multidict import CIMultiDict

ACCESS_KEY = "AKIABENCHREQUESTPATH"
SECRET_KEY = "bench-secret-key-of-the-request-path"
REGION = "us-east-1"
ACCOUNT = "default"
HOST = "127.0.0.1:8443"
TARGETS = ("GenerateDataKey", "Decrypt")
KEY_ALIAS = "bench"
AUDIT_FLUSH_EVERY = 200  # records per flush in the audit stage (the server flushes every 0.2 s)

Stage = Callable[[int], Awaitable[None]]  # runs a batch of n calls


@dataclass
class PlainRequest:
    """What the AWS wire reads of an HTTP request (the HTTP layer hands it the same fields)."""

    method: str
    raw_path: str
    headers: CIMultiDict[str]
    body: bytes
    remote: str | None = "127.0.0.1"
    body_too_large: bool = False  # the HTTP layer read the whole body

    @property
    def content_length(self) -> int:
        return len(self.body)

    async def read(self) -> bytes:
        return self.body


def signed_request(target: str, body: dict[str, Any]) -> PlainRequest:
    """One request as boto3 signs it (host, x-amz-date, x-amz-target, content-type signed)."""
    data = json.dumps(body).encode()
    request = AWSRequest(
        method="POST",
        url=f"http://{HOST}/",
        data=data,
        headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": f"TrentService.{target}"},
    )
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "kms", REGION).add_auth(request)
    headers: CIMultiDict[str] = CIMultiDict({"Host": HOST})
    headers.update((name, str(value)) for name, value in request.headers.items())
    headers["Content-Length"] = str(len(data))
    return PlainRequest("POST", "/", headers, data)


@dataclass
class Timings:
    per_call_us: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, seconds: float, calls: int) -> None:
        self.per_call_us.setdefault(name, []).append(seconds * 1e6 / calls)

    def median(self, name: str) -> float:
        return statistics.median(self.per_call_us[name])


async def interleave(stages: dict[str, Stage], *, rounds: int, batch: int) -> Timings:
    timings = Timings()
    for stage in stages.values():  # warm every cache once before timing
        await stage(batch)
    for _ in range(rounds):
        for name, stage in stages.items():
            started, wall = time.thread_time(), time.perf_counter()
            await stage(batch)
            timings.add(name, time.thread_time() - started, batch)
            if name == "pipeline":  # with PostgreSQL the loop also waits for the database
                timings.add("pipeline (wall)", time.perf_counter() - wall, batch)
    return timings


def single_process_metrics(operations: tuple[str, ...]) -> Any:
    """ServerMetrics whose values are plain (no PROMETHEUS_MULTIPROC_DIR), beside the multiprocess ones.

    prometheus_client picks its value class once, at import, and uses it whenever a labelled child is
    created: switch it while this instance's children are made.
    """
    from prometheus_client import values

    from kubekms.server.metrics import ServerMetrics

    saved = values.ValueClass
    values.ValueClass = values.MutexValue
    try:
        metrics = ServerMetrics()
        for operation in operations:
            metrics.observe(operation, "OK", 0.0)
    finally:
        values.ValueClass = saved
    return metrics


class RequestPath:
    """The server's pieces, built as the server builds them, on a keystore in ``state``."""

    def __init__(self, state: Path, database_url: str | None = None) -> None:
        from kubekms.server.audit import AuditLog
        from kubekms.server.aws_wire import AwsWire
        from kubekms.server.logs import RefusalLog
        from kubekms.server.metrics import ServerMetrics
        from kubekms.server.pipeline import Pipeline
        from kubekms.server.principals import PrincipalDirectory, PrincipalGrant
        from kubekms.server.sigv4 import SigV4Verifier

        self.state = state
        self.database_url = database_url  # None: SQLite in the state directory, as by default
        self.principals = PrincipalDirectory([PrincipalGrant.build("bench", ACCESS_KEY, SECRET_KEY)])
        self.verifier = SigV4Verifier(self.principals.secret_for)
        self.audit = AuditLog(str(state / "audit.log"))
        self.metrics = single_process_metrics(tuple("aws:" + target for target in TARGETS))
        self.metrics_mp = ServerMetrics()  # multiprocess: main() set PROMETHEUS_MULTIPROC_DIR before any import
        self.backends: dict[str, Any] = {}
        # Any: the wire reads a PlainRequest as it reads the HTTP layer's request (the same fields)
        self.pipeline: Any = Pipeline(wire=AwsWire(self.principals), principals=self.principals,
                                 backend_for=self.backend_for, audit=self.audit, metrics=self.metrics_mp,
                                 refusals=RefusalLog(self.metrics_mp))  # fmt: skip

    async def backend_for(self, project_id: str) -> Any:
        """As the server's: a dictionary lookup once the project's keystore is open."""
        backend = self.backends.get(project_id)
        if backend is None:
            from kubekms.keystore import Keystore
            from kubekms.providers.local import LocalBackend

            keystore = await asyncio.to_thread(Keystore, self.state / project_id, init=True,
                                               database_url=self.database_url)  # fmt: skip
            backend = self.backends[project_id] = LocalBackend(keystore)
        return backend

    async def call(self, request: PlainRequest) -> dict[str, Any]:
        response = await self.pipeline.handle(request)
        body = json.loads(bytes(response.body))
        if response.status != 200:
            raise RuntimeError(f"the bench request failed: {response.status} {body}")
        return body  # type: ignore[no-any-return]


async def stages_of(path: RequestPath, target: str, request: PlainRequest) -> dict[str, Stage]:
    from kubekms.server.aws_call import AwsCall, AwsRequest, check_region
    from kubekms.server.aws_operations import OPERATIONS
    from kubekms.server.pipeline import REQUEST_IDS
    from kubekms.server.principals import PrincipalGrant
    from kubekms.wire import inputs

    operation = OPERATIONS[target]
    backend = await path.backend_for(ACCOUNT)
    body = inputs.json_object(request.body)
    principal = path.principals.get(ACCESS_KEY)
    assert principal is not None
    parsed = AwsRequest(account=ACCOUNT, region=REGION, body=body, caller=principal)
    key_ref = operation.key_ref(parsed)
    call = AwsCall(account=ACCOUNT, region=REGION, body=body, backend=backend, caller=principal)
    answer = await operation.handler(call)

    async def request_id(n: int) -> None:
        for _ in range(n):
            REQUEST_IDS.uuid()

    async def sigv4(n: int) -> None:
        for _ in range(n):
            path.verifier.verify(request.method, request.raw_path, request.headers, request.body)

    async def json_body(n: int) -> None:
        for _ in range(n):
            inputs.json_object(request.body)

    async def authorise(n: int) -> None:
        for _ in range(n):
            grant = path.principals.get(ACCESS_KEY)
            assert grant is not None
            grant.check_operation(operation.permission, ACCOUNT)
            await grant.authorize_key(target, backend, key_ref, account=ACCOUNT, permission=operation.permission,
                                      body=request.body)  # fmt: skip

    limited = PrincipalGrant.build("app", "AKIABENCHLIMITED", SECRET_KEY, keys=[KEY_ALIAS])

    async def authorise_by_alias(n: int) -> None:  # a principal whose key list names the key by its alias
        for _ in range(n):
            await limited.authorize_key(target, backend, key_ref, account=ACCOUNT, permission=operation.permission,
                                        body=request.body)  # fmt: skip

    async def region(n: int) -> None:
        for _ in range(n):
            await check_region(call, key_ref)

    async def run_operation(n: int) -> None:
        for _ in range(n):
            await operation.handler(call)

    async def render(n: int) -> None:
        for _ in range(n):
            json.dumps(answer, separators=(",", ":")).encode()

    async def audit(n: int) -> None:
        for index in range(n):
            path.audit.record(principal="bench", project_id=ACCOUNT, operation="aws:" + target, key_id=key_ref,
                              result="OK", request_id="0" * 36, status=200)  # fmt: skip
            if index % AUDIT_FLUSH_EVERY == AUDIT_FLUSH_EVERY - 1:
                path.audit.flush()
        path.audit.flush()

    async def metrics(n: int) -> None:
        for _ in range(n):
            path.metrics.observe("aws:" + target, "OK", 0.0002)
        path.metrics.flush()  # the server flushes every 0.2 s

    async def metrics_mp(n: int) -> None:
        for _ in range(n):
            path.metrics_mp.observe("aws:" + target, "OK", 0.0002)
        path.metrics_mp.flush()

    async def pipeline(n: int) -> None:
        for index in range(n):
            await path.pipeline.handle(request)
            if index % AUDIT_FLUSH_EVERY == AUDIT_FLUSH_EVERY - 1:
                path.audit.flush()
                path.metrics_mp.flush()
        path.audit.flush()
        path.metrics_mp.flush()

    return {
        "request id": request_id,
        "sigv4": sigv4,
        "json body": json_body,
        "authorise": authorise,
        "authorise by alias": authorise_by_alias,
        "region": region,
        "operation": run_operation,
        "render": render,
        "audit": audit,
        "metrics": metrics,
        "metrics mp": metrics_mp,
        "pipeline": pipeline,
    }


def print_table(results: dict[str, Timings]) -> None:
    targets = list(results)
    names = list(next(iter(results.values())).per_call_us)
    print(f"\n{'stage (µs per call, median)':<28}" + "".join(f"{t:>18}" for t in targets))
    for name in names:
        print(f"{name:<28}" + "".join(f"{results[t].median(name):>18.1f}" for t in targets))
    parts = [n for n in names if n not in ("pipeline", "pipeline (wall)", "metrics", "authorise by alias")]
    print(f"{'sum of the stages (mp)':<28}" + "".join(f"{sum(results[t].median(n) for n in parts):>18.1f}"
                                                      for t in targets))  # fmt: skip


def profile(path: RequestPath, request: PlainRequest, seconds: float, out: str) -> None:
    async def loop() -> None:
        deadline = time.thread_time() + seconds
        while time.thread_time() < deadline:
            for _ in range(200):
                await path.pipeline.handle(request)

    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(loop())
    profiler.disable()
    profiler.dump_stats(out)
    pstats.Stats(out).sort_stats("tottime").print_stats(25)


async def measure(path: RequestPath, rounds: int, batch: int) -> tuple[dict[str, Timings], PlainRequest]:
    created = await path.call(signed_request("CreateKey", {"Description": "request path bench"}))
    key_id = created["KeyMetadata"]["KeyId"]
    await (await path.backend_for(ACCOUNT)).create_alias(key_id, KEY_ALIAS)
    generate = signed_request("GenerateDataKey", {"KeyId": key_id, "KeySpec": "AES_256"})
    blob = (await path.call(generate))["CiphertextBlob"]
    decrypt = signed_request("Decrypt", {"CiphertextBlob": blob})
    opened = await path.call(decrypt)
    assert base64.b64decode(opened["Plaintext"]) and opened["KeyId"].endswith(key_id), "Decrypt answered its key"
    results = {
        target: await interleave(await stages_of(path, target, request), rounds=rounds, batch=batch)
        for target, request in zip(TARGETS, (generate, decrypt), strict=True)
    }
    return results, generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=400)
    parser.add_argument("--profile", metavar="FILE", help="also profile the whole pipeline (cProfile) into FILE")
    parser.add_argument("--postgres", action="store_true", help="keystore rows in a throwaway PostgreSQL, not SQLite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kubekms-request-path-") as tmp, contextlib.ExitStack() as stack:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(Path(tmp) / "metrics")  # as the supervisor sets it for workers
        (Path(tmp) / "metrics").mkdir()
        database_url = None
        if args.postgres:
            from kubekms.devenv.postgres import postgres

            database_url = stack.enter_context(postgres()).database_url()
        path = RequestPath(Path(tmp), database_url)
        results, generate = asyncio.run(measure(path, args.rounds, args.batch))
        print(f"load: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs; rounds {args.rounds} x {args.batch}; "
              f"keystore {'postgres' if args.postgres else 'sqlite'}")  # fmt: skip
        print_table(results)
        if args.profile:
            profile(path, generate, 5.0, args.profile)
        path.audit.close()


if __name__ == "__main__":
    main()
