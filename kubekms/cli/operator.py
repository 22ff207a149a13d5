"""``kubekms operator``: the kopf operator for KMSKey and KMSBackend, in-process."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Coroutine
from typing import Any

import click


@click.command("operator")
@click.option("--namespace", "namespaces", multiple=True, help="Serve KMSKeys in this namespace (repeatable).")
@click.option("--all-namespaces", is_flag=True, help="Serve KMSKeys in every namespace (the default).")
@click.option("--drift-interval", type=float, default=300.0, show_default=True, help="Seconds between drift checks.")
@click.option(
    "--health-interval", type=float, default=30.0, show_default=True, help="Seconds between KMSBackend health calls."
)
@click.option("--liveness", default="", help="Liveness endpoint, e.g. http://0.0.0.0:8080/healthz.")
@click.option("--metrics-port", type=int, default=0, help="Port of the Prometheus /metrics endpoint (0: none).")
@click.option("--leader-elect", is_flag=True, help="Reconcile only while holding a Lease (several replicas).")
@click.option(
    "--leader-election-namespace", default="", help="Namespace of the Lease (default: $POD_NAMESPACE, else default)."
)
@click.option("--leader-election-name", default="kubekms-operator", show_default=True, help="Name of the Lease.")
@click.option(
    "--lease-duration", type=float, default=15.0, show_default=True, help="Seconds before a standby takes over."
)
@click.option("--renew-deadline", type=float, default=10.0, show_default=True, help="Seconds a leader tries to renew.")
@click.option("--retry-period", type=float, default=2.0, show_default=True, help="Seconds between Lease attempts.")
@click.option(
    "--credentials-namespace",
    default="",
    help="Read KMSBackends' credentials and CA Secrets only in this namespace (default: any).",
)
def operator(
    namespaces: tuple[str, ...],
    all_namespaces: bool,
    drift_interval: float,
    health_interval: float,
    liveness: str,
    metrics_port: int,
    leader_elect: bool,
    leader_election_namespace: str,
    leader_election_name: str,
    lease_duration: float,
    renew_deadline: float,
    retry_period: float,
    credentials_namespace: str,
) -> None:
    """Reconcile KMSKeys and KMSBackends against the KMS (kubeconfig or in-cluster credentials)."""
    import kopf
    import uvloop

    from kubekms.logs import configure_json_logging
    from kubekms_operator.handlers import register
    from kubekms_operator.leader import run_as_leader
    from kubekms_operator.settings import LeaderElectionSettings, OperatorSettings, ReencryptionSettings

    if namespaces and all_namespaces:
        raise click.UsageError("give --namespace or --all-namespaces, not both")
    if drift_interval <= 0 or health_interval <= 0:
        raise click.UsageError("--drift-interval and --health-interval must be positive")
    if leader_elect and not 0 < retry_period < renew_deadline < lease_duration:
        raise click.UsageError("leader election needs 0 < --retry-period < --renew-deadline < --lease-duration")
    configure_json_logging()
    try:
        settings = OperatorSettings(
            drift_interval=drift_interval,
            health_interval=health_interval,
            namespaces=namespaces,
            all_namespaces=not namespaces,
            liveness=liveness,
            metrics_port=metrics_port,
            reencryption=ReencryptionSettings.from_environment(os.environ),
            credentials_namespace=credentials_namespace,
            leader_election=LeaderElectionSettings(
                namespace=leader_election_namespace or os.environ.get("POD_NAMESPACE") or "default",
                # unique per process: a restarted container must not count as the holder it replaced
                identity=f"{os.environ.get('POD_NAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}",
                name=leader_election_name,
                lease_duration=lease_duration,
                renew_deadline=renew_deadline,
                retry_period=retry_period,
            )
            if leader_elect
            else None,
        )
        register(settings)  # reads KUBEKMS_OPERATOR_FAULT (the crash test's) too
    except ValueError as error:  # a variable of the Deployment's environment
        raise click.UsageError(str(error)) from None

    # kopf standalone (no peering): without --leader-elect one replica, deployed with strategy Recreate;
    # with it, kopf starts only in the replica holding the Lease, so two operators never race to create a key.
    def run_kopf() -> Coroutine[Any, Any, None]:
        return kopf.operator(
            standalone=True,
            clusterwide=settings.all_namespaces,
            namespaces=settings.namespaces,
            liveness_endpoint=settings.liveness or None,
        )

    election = settings.leader_election
    # uvloop: less CPU per event than asyncio's own loop, as in ``kubekms server``
    uvloop.run(run_kopf() if election is None else run_as_leader(election, settings.liveness, run_kopf))
