"""How a person reaches the dev stack's server: the CLI's ``KUBEKMS_*`` exports and the console.

``kubekms dev up`` writes the exports to ``<state dir>/client.env`` (0600: it names the admin's
credentials file, not the secret itself) on every run, since the server's port changes between
runs; ``kubekms dev env`` prints them for ``eval``.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from kubekms.devenv.kmsserver import ADMIN, KMSServer
from kubekms.private_files import write_private

CLIENT_ENV = "client.env"


def client_exports(server: KMSServer) -> str:
    settings = {
        "KUBEKMS_PROVIDER": "kubekms",
        "KUBEKMS_ENDPOINT": server.endpoint,
        "KUBEKMS_PROJECT_ID": server.project_id,
        "KUBEKMS_CREDENTIALS_FILE": str(server.credentials_file(ADMIN)),
    }
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in settings.items())


def write_client_env(state_dir: Path, server: KMSServer) -> Path:
    path = state_dir / CLIENT_ENV
    write_private(path, client_exports(server).encode())
    return path


def read_client_env(state_dir: Path) -> str:
    """The exports of the last ``kubekms dev up`` on ``state_dir``; FileNotFoundError when there was none."""
    return (state_dir / CLIENT_ENV).read_text()
