"""The rewrite pass against a real kube-apiserver: stale values are re-encrypted, resumably.

The KMS v2 rotation end to end (plugin + operator) is in test_rotation_finished.py;
this test isolates the pass itself with the apiserver's built-in aesgcm provider,
whose rotation (new first key) marks old values stale exactly like a new KMS key_id.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable

import pytest
from kubernetes import client, config

from kubekms.devenv.controlplane import ControlPlane, encryption_config
from kubekms_operator.reencryption import Progress, Rewriter, run_pass

pytestmark = pytest.mark.e2e

SECRETS = 250


def _aesgcm_config(*key_names: str, keys: dict[str, bytes]) -> str:
    entries = [{"name": name, "secret": base64.b64encode(keys[name]).decode()} for name in key_names]
    return encryption_config({"aesgcm": {"keys": entries}})


def _stored_key_names(plane: ControlPlane) -> dict[str, str]:
    names = {}
    for key in plane.etcd_keys("/registry/secrets/"):
        value = plane.etcd_get(key) or b""
        assert value.startswith(b"k8s:enc:aesgcm:v1:"), key
        names[key] = value.split(b":")[4].decode()
    return names


def test_pass_rewrites_every_stale_secret_and_resumes(
    control_plane_factory: Callable[..., ControlPlane],
) -> None:
    keys = {"key1": os.urandom(32), "key2": os.urandom(32)}
    plane = control_plane_factory(encryption_config=_aesgcm_config("key1", keys=keys))
    api_client = config.new_client_from_config(config_file=str(plane.kubeconfig))
    core = client.CoreV1Api(api_client)
    expected: dict[tuple[str, str], dict[str, str]] = {}
    for namespace in ("team-a", "team-b"):
        core.create_namespace({"metadata": {"name": namespace}})
    for index in range(SECRETS):
        namespace = "team-a" if index % 2 else "team-b"
        data = {"value": base64.b64encode(f"secret-{index}".encode()).decode()}
        core.create_namespaced_secret(namespace, {"metadata": {"name": f"s-{index:04d}"}, "data": data})
        expected[(namespace, f"s-{index:04d}")] = data
    assert set(_stored_key_names(plane).values()) == {"key1"}

    plane.restart_apiserver(encryption_config=_aesgcm_config("key2", "key1", keys=keys))
    api_client = config.new_client_from_config(config_file=str(plane.kubeconfig))
    rewriter = Rewriter(api_client, provider_name="unused", probe_namespace="default")
    saved: list[dict[str, object]] = []

    # First pass is interrupted after one page, as an operator restart would.
    progress = run_pass(
        rewriter, Progress(keyVersion=2), save=lambda p: saved.append(p.as_status()), should_stop=lambda: bool(saved)
    )
    assert not progress.finished
    assert 0 < progress.done < SECRETS
    names = _stored_key_names(plane)
    assert sum(name == "key2" for name in names.values()) == progress.done
    assert all(
        name == "key2" for key, name in names.items() if key.removeprefix("/registry/secrets/") <= progress.resumeAfter
    )

    # A new pass, started from the saved status only, finishes the job.
    restored = Progress.from_status(saved[-1])
    assert restored is not None
    final = run_pass(rewriter, restored, save=lambda p: saved.append(p.as_status()), should_stop=lambda: False)
    assert final.finished
    assert final.done == final.total == SECRETS
    assert set(_stored_key_names(plane).values()) == {"key2"}

    core = client.CoreV1Api(api_client)
    for (namespace, name), data in expected.items():
        assert core.read_namespaced_secret(name, namespace).data == data
