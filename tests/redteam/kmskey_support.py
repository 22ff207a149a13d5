"""The red-team operator tests' cluster (a control plane serving the CRDs, a kubekms server) and what they wait for
on a KMSKey (through operator_support's Cluster)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kubernetes import client

from kubekms.devenv.controlplane import ControlPlane, control_plane
from kubekms.devenv.kmsserver import KMSServer, kms_server
from kubekms.devenv.processes import wait_for
from kubekms.devenv.stack import apply_crds

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))
from operator_support import GROUP, VERSION, Cluster, api_client


@contextlib.contextmanager
def cluster_with_crds(root: Path) -> Iterator[tuple[ControlPlane, KMSServer]]:
    """A control plane serving the KMSKey and KMSBackend CRDs, and a kubekms server (state in ``root``/kms)."""
    with control_plane() as plane, kms_server(root / "kms") as kms:
        api = api_client(plane)
        apply_crds(api)
        objects = client.CustomObjectsApi(api)
        for plural in ("kmskeys", "kmsbackends"):  # a new CRD may answer 429 for a moment
            wait_for(lambda p=plural: objects.list_cluster_custom_object(GROUP, VERSION, p) is not None, 60, plural)
        yield plane, kms


def synced(cluster: Cluster, name: str) -> dict[str, Any]:
    """The Synced condition of the current generation, once the operator has written one."""

    def written() -> dict[str, Any] | None:
        generation = (cluster.key(name) or {})["metadata"]["generation"]
        condition = cluster.condition(name, "Synced")
        current = condition.get("observedGeneration") == generation
        return condition if condition.get("status") in ("True", "False") and current else None

    return wait_for(written, 60, f"KMSKey {cluster.namespace}/{name} Synced")
