"""``kubekms server``: serve the KMS v1.0 REST wire from the embedded keystore."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import click

from kubekms.keystore import KeystoreSetupError
from kubekms.server.config import ServerConfig, ServerConfigError
from kubekms.server.logs import configure_json_logging
from kubekms.server.principals import PrincipalsFileError
from kubekms.server.runner import ServerSetupError, serve


def run_event_loop(main: Coroutine[Any, Any, None]) -> None:
    """uvloop when installed: it roughly halves the event loop's share of each request."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


@click.command("server")
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="YAML file: listen, state_dir, principals_file, audit_log, tls_cert, tls_key, cmk_limit, "
    "maintenance_interval.",
)
@click.option("--init", is_flag=True, help="Create the state directory and root keys if missing (first start).")
def server(config_path: Path, init: bool) -> None:
    """Serve the Huawei/OTC KMS v1.0 REST wire (AK/SK signed) from the embedded keystore."""
    configure_json_logging()
    try:
        config = ServerConfig.load(config_path)
        run_event_loop(serve(config, init=init))
    except (ServerConfigError, PrincipalsFileError, ServerSetupError, KeystoreSetupError, OSError) as error:
        logging.getLogger("kubekms.server").error("cannot start", extra={"fields": {"error": str(error)}})
        raise SystemExit(2) from None
