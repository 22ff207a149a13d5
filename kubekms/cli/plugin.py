"""``kubekms plugin``: the KMS v2 plugin kube-apiserver calls on a Unix socket."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import click

from kubekms.errors import KMSError
from kubekms.keystore import KeystoreSetupError
from kubekms.logs import configure_json_logging

# gRPC's older listener: the plugin's socket is then read by the thread that waits for gRPC's
# completions instead of by gRPC's event-engine threads, one thread hand-off fewer per event:
# 10-25 % less CPU per call on grpc.aio, 20-25 % on the threaded server the plugin now runs
# (bench/plugin_bench.py). An operator's own GRPC_EXPERIMENTS wins.
GRPC_EXPERIMENTS = "-event_engine_listener"


@click.command("plugin")
@click.option(
    "--config",
    "config_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML file with every setting below (flags override it).",
)
@click.option("--socket", help="Unix socket path kube-apiserver connects to (created 0600).")
@click.option("--provider", help="Backend provider: kubekms, huaweicloud, aws, gcp, local.")
@click.option("--endpoint", help="Backend URL.")
@click.option("--project-id", help="Backend project / tenant.")
@click.option("--region", help="Backend region (huaweicloud, aws).")
@click.option("--location", help="Cloud KMS location of the key ring (gcp; default global).")
@click.option("--key-ring", help="Cloud KMS key ring id (gcp).")
@click.option(
    "--credentials-file",
    type=click.Path(dir_okay=False),
    help="YAML file with access_key and secret_key; for gcp a service-account key JSON.",
)
@click.option("--ca-file", type=click.Path(dir_okay=False), help="PEM bundle for the backend's TLS certificate.")
@click.option("--state-dir", type=click.Path(file_okay=False), help="Keystore directory (provider local).")
@click.option("--key", help="Id or alias of the backend key protecting the cluster's data.")
@click.option("--poll-interval", help="How often to look for rotations, e.g. 30s (at most 60s).")
@click.option("--kek-cache-size", type=int, help="Unwrapped KEKs kept in memory for Decrypt.")
@click.option("--kek-max-encryptions", type=int, help="Encrypt calls under one KEK before a new one.")
@click.option("--kek-max-age", help="Age after which a new KEK is made, e.g. 24h.")
@click.option("--health-address", help="host:port of /healthz, /metrics and /status (loopback by default).")
def plugin(config_path: Path | None, **flags: Any) -> None:
    """Serve the KMS v2 API (Status, Encrypt, Decrypt) with data keys from the backend."""
    # Read by gRPC once, when it is first imported: so before the server module (issue 15).
    os.environ.setdefault("GRPC_EXPERIMENTS", GRPC_EXPERIMENTS)
    from kubekms_plugin.config import ConfigError, load_config
    from kubekms_plugin.server import SocketInUse, run

    configure_json_logging()
    overrides = {
        "socket": flags["socket"],
        "backend.provider": flags["provider"],
        "backend.endpoint": flags["endpoint"],
        "backend.project_id": flags["project_id"],
        "backend.region": flags["region"],
        "backend.location": flags["location"],
        "backend.key_ring": flags["key_ring"],
        "backend.credentials_file": flags["credentials_file"],
        "backend.ca_file": flags["ca_file"],
        "backend.state_dir": flags["state_dir"],
        "key": flags["key"],
        "poll_interval": flags["poll_interval"],
        "kek.cache_size": flags["kek_cache_size"],
        "kek.max_encryptions": flags["kek_max_encryptions"],
        "kek.max_age": flags["kek_max_age"],
        "health_address": flags["health_address"],
    }
    log = logging.getLogger("kubekms.plugin")
    try:
        config = load_config(config_path, overrides)
        run(config)
    # KMSError: the backend cannot be opened; KeystoreSetupError: provider local's keystore is missing or not ours
    except (ConfigError, SocketInUse, OSError, KMSError, KeystoreSetupError) as error:
        log.error("cannot start", extra={"fields": {"error": str(error)}})
        raise SystemExit(2) from None
