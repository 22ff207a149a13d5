"""The operator's speed: ``python bench/operator_bench.py [--keys N] [--profile FILE]``.

A real etcd + kube-apiserver, the real kubekms server and ``kubekms operator`` as a
subprocess. In the same run, with the same client: create N ConfigMaps (the baseline:
what the apiserver alone costs per object; half before the KMSKeys, half after), and apply
N KMSKeys and time until every one is Ready (a real key in the server; counted from a watch, so the bench adds no lists
of N objects). Prints both times, their ratio, backend calls per key (from the server's
audit log, health checks included), the operator's writes to the apiserver per key (from
the apiserver's own request counter: patches of the object, status patches, Events), the
operator's peak resident memory (VmHWM), its resident memory before the first KMSKey (the
imports: the kubernetes client alone is ~65 MB) and CPU per key. A second baseline applies the
same KMSKeys in a namespace the operator does not serve: the apiserver's own cost for this CRD.
The chart's MutatingAdmissionPolicy (kubekms_operator.finalizer_policy) puts the finalizer on
each KMSKey of the served namespace as it is created, as in a Helm install; ``--no-finalizer-policy``
leaves it out (kopf then adds the finalizer in a patch of its own: the A/B of that policy).
``--profile FILE`` runs the operator under cProfile (its event loop thread) and writes the
stats to FILE (slower: for where the time goes, not for the figures). ``--py-spy FILE`` samples
the operator with py-spy (``pip install py-spy``; the thread holding the GIL, little overhead) during the KMSKey
phase and writes collapsed stacks to FILE. ``--pprof FILE`` takes a Go CPU profile of kube-apiserver
(its /debug/pprof) over about the KMSKey phase (``go tool pprof -top FILE``). Watch events per key are
the apiserver's count of KMSKey events sent to watchers: the operator's and the bench's own watch.

Targets (issue 15): 500 KMSKeys Ready <= 3x 500 ConfigMaps, <= 3 backend calls per key,
peak RSS <= 150 MB; 5,000 KMSKeys (``--keys 5000``) <= 300 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from prometheus_client.parser import text_string_to_metric_families

from kubekms.devenv.controlplane import ControlPlane, control_plane
from kubekms.devenv.kmsserver import kms_server
from kubekms.devenv.processes import ManagedProcess, free_port, kubekms_argv, wait_for
from kubekms.devenv.stack import apply_crds
from kubekms_operator import finalizer_policy

NAMESPACE = "bench"
IDLE_NAMESPACE = "bench-unserved"
TARGETS = {"ratio": 3.0, "backend_calls_per_key": 3.0}
RSS_TARGET_MB = {500: 150.0, 5000: 300.0}
# The operator's writes, as the apiserver counts them: (resource, subresource, verb).
WRITES = {
    ("kmskeys", "", "PATCH"): "object_patches_per_key",
    ("kmskeys", "status", "PATCH"): "status_patches_per_key",
    ("events", "", "POST"): "events_per_key",
}


def key_body(index: int) -> dict[str, Any]:
    return {
        "apiVersion": "kubekms.io/v1alpha1",
        "kind": "KMSKey",
        "metadata": {"name": f"key-{index:05d}"},
        "spec": {"backendRef": {"name": "bench"}, "tags": {"bench": "yes"}},
    }


def rss_mb(pid: int, field: str = "VmHWM") -> float:
    """A memory figure of /proc/PID/status in MB: VmHWM (the peak resident set) or VmRSS (now)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """CPU of a process and its live children (the server's workers under its supervisor)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    children = [
        int(child) for task in Path(f"/proc/{pid}/task").iterdir() for child in (task / "children").read_text().split()
    ]
    return own + sum(cpu_seconds(child) for child in children)


def control_plane_cpu(plane: ControlPlane, which: str = "both") -> float:
    """CPU seconds of kube-apiserver and etcd, or of one of them (the devenv keeps their processes private)."""
    processes = {"apiserver": (plane._apiserver,), "etcd": (plane._etcd,), "both": (plane._apiserver, plane._etcd)}
    return sum(cpu_seconds(p.process.pid) for p in processes[which] if p is not None and p.process is not None)


@contextlib.contextmanager
def apiserver_pprof(plane: ControlPlane, output: Path | None, seconds: int) -> Iterator[None]:
    """A Go CPU profile of kube-apiserver over the first ``seconds`` of the block, into ``output``
    (``go tool pprof -top FILE``); nothing without output."""
    if output is None:
        yield
        return
    context = ssl.create_default_context(cafile=str(plane.pki.ca_cert))
    context.load_cert_chain(str(plane.pki.admin_cert), str(plane.pki.admin_key))
    url = f"{plane.apiserver_url}/debug/pprof/profile?seconds={seconds}"

    def fetch() -> None:
        with urllib.request.urlopen(url, context=context, timeout=seconds + 30) as answer:
            output.write_bytes(answer.read())

    profiler = threading.Thread(target=fetch, daemon=True)
    profiler.start()
    try:
        yield
    finally:
        profiler.join(seconds + 60)


def audit_lines(path: Path) -> int:
    return sum(1 for _ in path.open()) if path.exists() else 0


def apiserver_requests(plane: ControlPlane) -> Counter[tuple[str, str, str]]:
    """kube-apiserver's own count of the requests it served, by (resource, subresource, verb), and of
    the watch events it sent, by ("watch events", kind, "")."""
    status, text = plane.api_get("/metrics")
    assert status == 200, text[:200]
    counts: Counter[tuple[str, str, str]] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "apiserver_request_total":
                counts[labels.get("resource", ""), labels.get("subresource", ""), labels.get("verb", "")] += int(
                    sample.value
                )
            elif sample.name == "apiserver_watch_events_total":
                counts["watch events", labels.get("kind", labels.get("resource", "")), ""] += int(sample.value)
    return counts


@contextlib.contextmanager
def py_spy(pid: int, output: Path | None) -> Iterator[None]:
    """Sample ``pid`` with py-spy into ``output`` (collapsed stacks) for the duration; nothing without output."""
    if output is None:
        yield
        return
    binary = Path(sys.executable).with_name("py-spy")  # installed beside the interpreter
    argv = [
        str(binary),
        "record",
        "--pid",
        str(pid),
        "--rate",
        "200",
        "--gil",
        "--format",
        "raw",
        "--output",
        str(output),
    ]
    sampler = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    try:
        time.sleep(1.0)  # py-spy attaches; it has no readiness signal
        yield
    finally:
        sampler.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        sampler.wait(timeout=60)


class ReadyWatch:
    """Counts KMSKeys whose Ready condition is True, from a watch in a thread; notes when all N are."""

    def __init__(self, objects: client.CustomObjectsApi, expected: int) -> None:
        self._objects, self._expected = objects, expected
        self._ready: set[str] = set()
        self._progress_at = time.perf_counter()
        self.all_ready_at: float | None = None
        self.cpu_seconds = 0.0  # of the watching thread
        listed = objects.list_namespaced_custom_object("kubekms.io", "v1alpha1", NAMESPACE, "kmskeys", limit=1)
        self._version = listed["metadata"]["resourceVersion"]
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        started = time.thread_time()
        try:
            self._watch()
        finally:
            self.cpu_seconds = time.thread_time() - started

    def _watch(self) -> None:
        while self.all_ready_at is None:  # a watch the apiserver closes is opened again where it stopped
            # The raw stream, a JSON line per event: the client's own watch helper cost this process
            # twice its creates in CPU (0.8 ms per KMSKey), taken from the cores the run measures.
            answer = self._objects.list_namespaced_custom_object(
                "kubekms.io",
                "v1alpha1",
                NAMESPACE,
                "kmskeys",
                watch=True,
                resource_version=self._version,
                timeout_seconds=300,
                _preload_content=False,
            )
            pending = b""
            try:
                for chunk in answer.stream(1 << 16):
                    *lines, pending = (pending + chunk).split(b"\n")
                    for line in lines:
                        if line and self._seen(json.loads(line)):
                            return
            finally:
                answer.close()  # never back to the pool: a watch left open would answer the next request

    def _seen(self, event: dict[str, Any]) -> bool:
        """Note one watch event; True once all are Ready."""
        item = event["object"]
        if event["type"] == "ERROR":
            raise RuntimeError(f"the watch of KMSKeys failed: {item}")
        self._version = item["metadata"]["resourceVersion"]
        conditions = (item.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            self._ready.add(item["metadata"]["name"])
            self._progress_at = time.perf_counter()
        if len(self._ready) == self._expected:
            self.all_ready_at = time.perf_counter()
        return self.all_ready_at is not None

    def wait(self, stall: float) -> float:
        """When all were Ready; TimeoutError once no KMSKey became Ready for ``stall`` seconds."""
        while self._thread.is_alive() and time.perf_counter() - self._progress_at < stall:
            self._thread.join(1.0)
        if self.all_ready_at is None:
            raise TimeoutError(f"{len(self._ready)} of {self._expected} KMSKeys Ready; none more for {stall:.0f} s")
        return self.all_ready_at


def create_configmaps(core: client.CoreV1Api, plane: ControlPlane, indexes: range) -> tuple[float, float]:
    """Create one ConfigMap per index, one after the other; (seconds, control-plane CPU seconds)."""
    plane_cpu, started = control_plane_cpu(plane), time.perf_counter()
    for index in indexes:
        core.create_namespaced_config_map(NAMESPACE, {"metadata": {"name": f"cm-{index:05d}"}, "data": {"a": "b"}})
    return time.perf_counter() - started, control_plane_cpu(plane) - plane_cpu


def run(
    keys: int,
    workdir: Path,
    profile: Path | None = None,
    sampled: Path | None = None,
    policy: bool = True,
    pprof: Path | None = None,
) -> dict[str, Any]:
    with control_plane() as plane, kms_server(workdir / "kms", cmk_limit=max(1000, keys + 100)) as server:
        api = config.new_client_from_config(config_file=str(plane.kubeconfig))
        core, objects = client.CoreV1Api(api), client.CustomObjectsApi(api)
        apply_crds(api)
        core.create_namespace({"metadata": {"name": NAMESPACE}})
        if policy:
            finalizer_policy.install(api, (NAMESPACE,), NAMESPACE)
        credentials = yaml.safe_load(server.credentials_file("admin").read_text())
        core.create_namespaced_secret(NAMESPACE, {"metadata": {"name": "kms"}, "stringData": credentials})
        objects.create_cluster_custom_object(
            "kubekms.io",
            "v1alpha1",
            "kmsbackends",
            {
                "apiVersion": "kubekms.io/v1alpha1",
                "kind": "KMSBackend",
                "metadata": {"name": "bench"},
                "spec": {
                    "provider": "kubekms",
                    "endpoint": server.endpoint,
                    "projectId": server.project_id,
                    "credentialsSecretRef": {"namespace": NAMESPACE, "name": "kms"},
                },
            },
        )
        argv = kubekms_argv("operator", "--namespace", NAMESPACE)
        if profile is not None:
            argv = [sys.executable, "-m", "cProfile", "-o", str(profile), *argv[1:]]
        liveness = f"http://127.0.0.1:{free_port()}/healthz"
        argv += ["--drift-interval", "3600", "--health-interval", "30", "--liveness", liveness]
        operator = ManagedProcess(
            "kubekms operator", argv, workdir / "operator.log", env=dict(os.environ, KUBECONFIG=str(plane.kubeconfig))
        )
        operator.start()
        try:
            operator.wait_until(lambda: urllib.request.urlopen(liveness, timeout=2).status == 200, 60, "liveness")
            # Half the ConfigMaps before the KMSKeys and half after: a baseline that brackets them in time,
            # so that a change of the machine's load during the run weighs on both sides alike.
            configmaps_seconds, configmaps_plane_cpu = create_configmaps(core, plane, range(keys // 2))

            # The same KMSKeys in a namespace the operator does not serve: what the apiserver alone
            # costs for this CRD (schema defaults, CEL rules), to tell it apart from the operator's share.
            core.create_namespace({"metadata": {"name": IDLE_NAMESPACE}})
            started, client_cpu = time.perf_counter(), time.process_time()
            for index in range(keys):
                objects.create_namespaced_custom_object(
                    "kubekms.io", "v1alpha1", IDLE_NAMESPACE, "kmskeys", key_body(index)
                )
            unserved_seconds = time.perf_counter() - started
            unserved_client_cpu = time.process_time() - client_cpu

            calls_before = audit_lines(server.audit_log)
            assert operator.process is not None and server.pid is not None
            cpu_before = (
                cpu_seconds(operator.process.pid),
                cpu_seconds(server.pid),
                control_plane_cpu(plane),
                time.process_time(),
                control_plane_cpu(plane, "etcd"),
            )
            rss_before = rss_mb(operator.process.pid, "VmRSS")  # imports and the idle operator, no KMSKey yet
            ready = ReadyWatch(objects, keys)
            requests_before = apiserver_requests(plane)
            pprof_seconds = max(2, keys // 100)  # about the KMSKey phase
            with py_spy(operator.process.pid, sampled), apiserver_pprof(plane, pprof, pprof_seconds):
                started = time.perf_counter()
                for index in range(keys):
                    objects.create_namespaced_custom_object(
                        "kubekms.io", "v1alpha1", NAMESPACE, "kmskeys", key_body(index)
                    )
                applied_seconds = time.perf_counter() - started
                keys_seconds = ready.wait(stall=120.0) - started
            peak = rss_mb(operator.process.pid)
            operator_cpu = cpu_seconds(operator.process.pid) - cpu_before[0]
            server_cpu = cpu_seconds(server.pid) - cpu_before[1]
            keys_plane_cpu = control_plane_cpu(plane) - cpu_before[2]
            bench_cpu = time.process_time() - cpu_before[3]
            etcd_cpu = control_plane_cpu(plane, "etcd") - cpu_before[4]
            # kopf posts Events from a queue, after the status said Ready: one "Created" per key.
            posted = ("events", "", "POST")
            with contextlib.suppress(TimeoutError):  # the counts below then show how far posting got
                wait_for(lambda: (apiserver_requests(plane) - requests_before)[posted] >= keys, 120, "an Event per key")
            requests = apiserver_requests(plane) - requests_before
            seconds, plane_cpu = create_configmaps(core, plane, range(keys // 2, keys))
            configmaps_seconds, configmaps_plane_cpu = configmaps_seconds + seconds, configmaps_plane_cpu + plane_cpu
        finally:
            operator.stop()
        server.stop()  # writes the audit buffer
        calls = audit_lines(server.audit_log) - calls_before
    return {
        "keys": keys,
        "configmaps_seconds": round(configmaps_seconds, 2),
        "kmskeys_unserved_applied_seconds": round(unserved_seconds, 2),
        "kmskeys_applied_seconds": round(applied_seconds, 2),
        "kmskeys_ready_seconds": round(keys_seconds, 2),
        "ratio": round(keys_seconds / configmaps_seconds, 2),
        "ratio_to_unserved_kmskeys": round(keys_seconds / unserved_seconds, 2),
        "backend_calls_per_key": round(calls / keys, 2),
        **{name: round(requests[where] / keys, 2) for where, name in WRITES.items()},
        # Every kind of request of the KMSKey phase (the bench's own creates and watch included).
        "apiserver_requests_per_key": {
            " ".join(filter(None, where)): round(count / keys, 2)
            for where, count in sorted(requests.items())
            if count >= keys / 100
        },
        "operator_peak_rss_mb": round(peak, 1),
        "operator_rss_before_keys_mb": round(rss_before, 1),
        "operator_cpu_ms_per_key": round(operator_cpu * 1000 / keys, 1),
        "server_cpu_ms_per_key": round(server_cpu * 1000 / keys, 1),
        "apiserver_etcd_cpu_ms_per_kmskey": round(keys_plane_cpu * 1000 / keys, 1),
        "etcd_cpu_ms_per_kmskey": round(etcd_cpu * 1000 / keys, 1),
        "apiserver_etcd_cpu_ms_per_configmap": round(configmaps_plane_cpu * 1000 / keys, 1),
        # this process alone: its creates and its watch of Ready
        "bench_client_cpu_ms_per_key": round(bench_cpu * 1000 / keys, 1),
        # of which its creates alone (the same creates in the unserved namespace); the rest is its watch
        "bench_client_create_cpu_ms_per_key": round(unserved_client_cpu * 1000 / keys, 1),
        "bench_client_watch_cpu_ms_per_key": round(ready.cpu_seconds * 1000 / keys, 1),
        # all of the above: on a shared machine the ratio of times follows everyone else's load,
        # the CPU spent per KMSKey much less (the figure to compare two versions by)
        "cpu_ms_per_kmskey_all": round((operator_cpu + server_cpu + keys_plane_cpu + bench_cpu) * 1000 / keys, 1),
        "finalizer_policy": policy,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=500, help="KMSKeys (and ConfigMaps) to create, e.g. 5000")
    parser.add_argument("--profile", type=Path, help="write the operator's cProfile stats to this file")
    parser.add_argument("--py-spy", type=Path, help="write py-spy's collapsed stacks of the operator to this file")
    parser.add_argument(
        "--pprof", type=Path, help="write a Go CPU profile of kube-apiserver during the KMSKey phase to this file"
    )
    parser.add_argument(
        "--no-finalizer-policy", action="store_true", help="leave the finalizer to kopf (no MutatingAdmissionPolicy)"
    )
    args = parser.parse_args()
    if not 1 <= args.keys <= 99_999:
        parser.error("--keys must be between 1 and 99999")
    with tempfile.TemporaryDirectory(prefix="kubekms-operator-bench-") as workdir:
        profile, sampled, pprof = (path.resolve() if path else None for path in (args.profile, args.py_spy, args.pprof))
        figures = run(args.keys, Path(workdir), profile, sampled, policy=not args.no_finalizer_policy, pprof=pprof)
    print(json.dumps(figures, indent=2))
    rss_target = RSS_TARGET_MB[min(RSS_TARGET_MB, key=lambda n: abs(n - args.keys))]
    print(
        f"{args.keys} ConfigMaps: {figures['configmaps_seconds']}s; {args.keys} KMSKeys Ready: "
        f"{figures['kmskeys_ready_seconds']}s; ratio {figures['ratio']} (target <= {TARGETS['ratio']}); "
        f"{figures['backend_calls_per_key']} backend calls/key (target <= {TARGETS['backend_calls_per_key']}); "
        f"operator peak RSS {figures['operator_peak_rss_mb']} MB (target <= {rss_target})"
    )


if __name__ == "__main__":
    main()
