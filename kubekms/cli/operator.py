"""``kubekms operator``: the kopf operator for KMSKey and KMSBackend, in-process."""

from __future__ import annotations

import os

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
def operator(
    namespaces: tuple[str, ...],
    all_namespaces: bool,
    drift_interval: float,
    health_interval: float,
    liveness: str,
    metrics_port: int,
) -> None:
    """Reconcile KMSKeys and KMSBackends against the KMS (kubeconfig or in-cluster credentials)."""
    import kopf
    import uvloop

    from kubekms.logs import configure_json_logging
    from kubekms_operator.handlers import register
    from kubekms_operator.settings import OperatorSettings, ReencryptionSettings

    if namespaces and all_namespaces:
        raise click.UsageError("give --namespace or --all-namespaces, not both")
    if drift_interval <= 0 or health_interval <= 0:
        raise click.UsageError("--drift-interval and --health-interval must be positive")
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
        )
        register(settings)  # reads KUBEKMS_OPERATOR_FAULT (the crash test's) too
    except ValueError as error:  # a variable of the Deployment's environment
        raise click.UsageError(str(error)) from None
    # Standalone (no peering): one replica, deployed with strategy Recreate, so two operators
    # never race to create the same key.
    uvloop.run(  # less CPU per event than asyncio's own loop, as in ``kubekms server``
        kopf.operator(
            standalone=True,
            clusterwide=settings.all_namespaces,
            namespaces=settings.namespaces,
            liveness_endpoint=settings.liveness or None,
        )
    )
