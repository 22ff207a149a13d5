"""The operator's speed: ``python bench/operator_bench.py [--keys N]``.

A real etcd + kube-apiserver, the real kubekms server and ``kubekms operator`` as a
subprocess. In the same run, with the same client: create N ConfigMaps (the baseline:
what the apiserver alone costs per object), then apply N KMSKeys and time until every
one is Ready (a real key in the server). Prints both times, their ratio, backend calls
per key (from the server's audit log, health checks included), the operator's peak
resident memory (VmHWM) and CPU per key. A second baseline applies the same KMSKeys in a
namespace the operator does not serve: the apiserver's own cost for this CRD.

Targets (issue 5): ratio <= 5, peak memory <= 200 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config

from kubekms.devenv.controlplane import control_plane
from kubekms.devenv.kmsserver import kms_server
from kubekms.devenv.processes import ManagedProcess, free_port, kubekms_argv, wait_for
from kubekms.devenv.stack import apply_crds

NAMESPACE = "bench"
IDLE_NAMESPACE = "bench-unserved"


def key_body(index: int) -> dict[str, Any]:
    return {
        "apiVersion": "kubekms.io/v1alpha1",
        "kind": "KMSKey",
        "metadata": {"name": f"key-{index:04d}"},
        "spec": {"backendRef": {"name": "bench"}, "tags": {"bench": "yes"}},
    }


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def audit_lines(path: Path) -> int:
    return sum(1 for _ in path.open()) if path.exists() else 0


def ready_count(objects: client.CustomObjectsApi) -> int:
    items = objects.list_namespaced_custom_object("kubekms.io", "v1alpha1", NAMESPACE, "kmskeys")["items"]
    return sum(
        any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (i.get("status") or {}).get("conditions") or []
        )
        for i in items
    )


def run(keys: int, workdir: Path) -> dict[str, Any]:
    with control_plane() as plane, kms_server(workdir / "kms") as server:
        api = config.new_client_from_config(config_file=str(plane.kubeconfig))
        core, objects = client.CoreV1Api(api), client.CustomObjectsApi(api)
        apply_crds(api)
        core.create_namespace({"metadata": {"name": NAMESPACE}})
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
        liveness = f"http://127.0.0.1:{free_port()}/healthz"
        argv += ["--drift-interval", "3600", "--health-interval", "30", "--liveness", liveness]
        operator = ManagedProcess(
            "kubekms operator", argv, workdir / "operator.log", env=dict(os.environ, KUBECONFIG=str(plane.kubeconfig))
        )
        operator.start()
        try:
            operator.wait_until(lambda: urllib.request.urlopen(liveness, timeout=2).status == 200, 60, "liveness")
            started = time.perf_counter()
            for index in range(keys):
                core.create_namespaced_config_map(
                    NAMESPACE, {"metadata": {"name": f"cm-{index:04d}"}, "data": {"a": "b"}}
                )
            configmaps_seconds = time.perf_counter() - started

            # The same KMSKeys in a namespace the operator does not serve: what the apiserver alone
            # costs for this CRD (schema defaults, CEL rules), to tell it apart from the operator's share.
            core.create_namespace({"metadata": {"name": IDLE_NAMESPACE}})
            started = time.perf_counter()
            for index in range(keys):
                objects.create_namespaced_custom_object(
                    "kubekms.io", "v1alpha1", IDLE_NAMESPACE, "kmskeys", key_body(index)
                )
            unserved_seconds = time.perf_counter() - started

            calls_before = audit_lines(server.audit_log)
            assert operator.process is not None and server.pid is not None
            cpu_before = cpu_seconds(operator.process.pid), cpu_seconds(server.pid)
            started = time.perf_counter()
            for index in range(keys):
                objects.create_namespaced_custom_object("kubekms.io", "v1alpha1", NAMESPACE, "kmskeys", key_body(index))
            applied_seconds = time.perf_counter() - started
            wait_for(lambda: ready_count(objects) == keys, 900, f"{keys} KMSKeys Ready", interval=0.5)
            keys_seconds = time.perf_counter() - started
            peak = peak_rss_mb(operator.process.pid)
            operator_cpu = cpu_seconds(operator.process.pid) - cpu_before[0]
            server_cpu = cpu_seconds(server.pid) - cpu_before[1]
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
        "operator_peak_rss_mb": round(peak, 1),
        "operator_cpu_ms_per_key": round(operator_cpu * 1000 / keys, 1),
        "server_cpu_ms_per_key": round(server_cpu * 1000 / keys, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=500, help="KMSKeys (and ConfigMaps) to create")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kubekms-operator-bench-") as workdir:
        figures = run(args.keys, Path(workdir))
    print(json.dumps(figures, indent=2))
    print(
        f"{args.keys} ConfigMaps: {figures['configmaps_seconds']}s; {args.keys} KMSKeys Ready: "
        f"{figures['kmskeys_ready_seconds']}s; ratio {figures['ratio']} (target <= 5); "
        f"{figures['backend_calls_per_key']} backend calls/key; operator peak RSS "
        f"{figures['operator_peak_rss_mb']} MB (target <= 200)"
    )


if __name__ == "__main__":
    main()
