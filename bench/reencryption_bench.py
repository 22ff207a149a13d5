"""Re-encrypting every Secret after a rotation: ``python bench/reencryption_bench.py [--secrets N]``.

One real etcd + kube-apiserver (built-in aesgcm provider: a new first key makes every stored
Secret stale exactly as a new KMS key_id does). N Secrets (default 5,000) are written under
key1, then the key rotates and the stale Secrets are rewritten three ways, each after a
rotation of its own, in the same run:

1. the documented manual way: ``kubectl get secrets -A -o json | kubectl replace -f -``
2. the operator's pass (``kubekms_operator.reencryption.run_pass``), rate limit off, as shipped
3. the same pass one Secret at a time (concurrency 1): what concurrency within a page adds

Each is checked: afterwards every stored Secret is under the newest key. Prints Secrets/s and
the ratio of the pass to kubectl (target: >= 1.0x, issue 15).
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kubernetes import client, config

from kubekms.devenv.controlplane import ControlPlane, control_plane, encryption_config
from kubekms_operator.reencryption import REWRITE_CONCURRENCY, Progress, Rewriter, run_pass

NAMESPACES = 10
PREFIX = "/registry/secrets/"


def kubectl_binary() -> str:
    cached = sorted(Path.home().glob(".cache/kubekms/bin/node-k8s-*/kubectl"))
    found = str(cached[-1]) if cached else shutil.which("kubectl")
    if found is None:
        raise SystemExit("kubectl not found: on PATH or under ~/.cache/kubekms/bin (scripts/test builds it)")
    return found


def aesgcm_config(keys: list[tuple[str, bytes]]) -> str:
    entries = [{"name": name, "secret": base64.b64encode(secret).decode()} for name, secret in keys]
    return encryption_config({"aesgcm": {"keys": entries}})


def stored_under(plane: ControlPlane, key_name: str) -> tuple[int, int]:
    """(Secrets stored under ``key_name``, all Secrets) read from etcd itself."""
    keys = plane.etcd_keys(PREFIX)

    def name_of(key: str) -> str:
        return (plane.etcd_get(key) or b"").split(b":")[4].decode()  # k8s:enc:aesgcm:v1:<key name>:...

    with ThreadPoolExecutor(8) as pool:
        names = list(pool.map(name_of, keys))
    return sum(name == key_name for name in names), len(names)


def create_secrets(plane: ControlPlane, count: int) -> None:
    api = config.new_client_from_config(config_file=str(plane.kubeconfig))
    api.configuration.connection_pool_maxsize = 16
    core = client.CoreV1Api(api)
    for index in range(NAMESPACES):
        core.create_namespace({"metadata": {"name": f"bench-{index}"}})
    value = base64.b64encode(os.urandom(64)).decode()

    def create(index: int) -> None:
        body = {"metadata": {"name": f"s-{index:06d}"}, "data": {"v": value}}
        core.create_namespaced_secret(f"bench-{index % NAMESPACES}", body)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(create, range(count)))


def timed(rewrite: Callable[[], None]) -> float:
    started = time.perf_counter()
    rewrite()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--secrets", type=int, default=5000, help="Secrets to re-encrypt (default 5000)")
    options = parser.parse_args()
    kubectl = kubectl_binary()
    keys: list[tuple[str, bytes]] = [("key1", os.urandom(32))]

    with control_plane(encryption_config=aesgcm_config(keys)) as plane:
        print(f"writing {options.secrets} Secrets under key1 ...", flush=True)
        create_secrets(plane, options.secrets)
        total = stored_under(plane, "key1")[1]

        def rotate() -> str:
            name = f"key{len(keys) + 1}"
            keys.insert(0, (name, os.urandom(32)))
            plane.restart_apiserver(encryption_config=aesgcm_config(keys))
            return name

        def manual() -> None:
            command = f"{kubectl} get secrets -A -o json | {kubectl} replace -f - >/dev/null"
            environment = {**os.environ, "KUBECONFIG": str(plane.kubeconfig)}
            subprocess.run(["bash", "-o", "pipefail", "-c", command], check=True, env=environment)

        def operator_pass(concurrency: int) -> Callable[[], None]:
            def rewrite() -> None:
                api = config.new_client_from_config(config_file=str(plane.kubeconfig))
                rewriter = Rewriter(api, provider_name="unused", probe_namespace="default")
                progress = run_pass(
                    rewriter, Progress(keyVersion=len(keys)), lambda _: None, lambda: False, 0.0, concurrency
                )
                assert progress.finished

            return rewrite

        ways = [
            ("kubectl get | kubectl replace", manual),
            (f"run_pass, {REWRITE_CONCURRENCY} concurrent", operator_pass(REWRITE_CONCURRENCY)),
            ("run_pass, 1 at a time", operator_pass(1)),
        ]
        results: dict[str, float] = {}
        for name, rewrite in ways:
            newest = rotate()
            seconds = timed(rewrite)
            current, stored = stored_under(plane, newest)
            if current != stored or stored != total:
                raise SystemExit(f"{name}: only {current} of {stored} Secrets under {newest} afterwards")
            results[name] = stored / seconds
            print(f"  {name:<32} {seconds:7.1f} s  {results[name]:7.0f} Secrets/s", flush=True)

    kubectl_rate = results[ways[0][0]]
    for name, _ in ways[1:]:
        print(f"{name} / kubectl: {results[name] / kubectl_rate:.2f}x")
    verdict = "met" if results[ways[1][0]] >= kubectl_rate else "NOT met"
    print(f"target: the pass (rate limit off) >= 1.0x kubectl replace: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
