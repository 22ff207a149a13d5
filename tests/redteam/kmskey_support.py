"""What the red-team operator tests wait for on a KMSKey (through operator_support's Cluster)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from kubekms.devenv.processes import wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))
from operator_support import Cluster


def synced(cluster: Cluster, name: str) -> dict[str, Any]:
    """The Synced condition of the current generation, once the operator has written one."""

    def written() -> dict[str, Any] | None:
        generation = (cluster.key(name) or {})["metadata"]["generation"]
        condition = cluster.condition(name, "Synced")
        current = condition.get("observedGeneration") == generation
        return condition if condition.get("status") in ("True", "False") and current else None

    return wait_for(written, 60, f"KMSKey {cluster.namespace}/{name} Synced")
