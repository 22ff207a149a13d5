"""The operator's settings: one typed object, built from the command line and passed explicitly."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OperatorSettings:
    """drift_interval: seconds between re-reads of every key (drift correction), default 300.
    health_interval: seconds between health calls to every KMSBackend, default 30.
    namespaces: namespaces whose KMSKeys are served; empty with all_namespaces for the whole cluster.
    liveness: kopf's liveness endpoint URL (``http://0.0.0.0:8080/healthz``) or empty.
    metrics_port: port of the Prometheus /metrics endpoint, 0 for none.
    """

    drift_interval: float = 300.0
    health_interval: float = 30.0
    namespaces: tuple[str, ...] = ()
    all_namespaces: bool = True
    liveness: str = ""
    metrics_port: int = 0
