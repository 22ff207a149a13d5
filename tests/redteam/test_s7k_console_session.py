"""A console session outlived the rotation of the secret it was signed in with.

Sessions are stored by access key and survive a server restart (README). Rotating a leaked secret key
means a new ``secret_key`` for the same access key in principals.yaml and a restart: whoever had signed
in to the console with the leaked secret stayed signed in, with every console action of that principal
(disable, schedule deletion, policies...), until the session ended (``session_seconds``, up to 24 h).
Expected: a session opened with a secret the principal no longer has ends; a session whose principal's
secret is unchanged still survives the restart.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "console"))
from console_harness import PROJECT, ConsoleHttp, credentials, start_server

KEYS_PAGE = f"/console/p/{PROJECT}/keys"


def test_rotating_a_secret_ends_the_console_sessions_signed_in_with_it(tmp_path: Path) -> None:
    server = start_server(tmp_path / "state")
    try:
        leaked, kept = ConsoleHttp(server.endpoint), ConsoleHttp(server.endpoint)
        assert leaked.sign_in(*credentials(server, "one-key")).status_code == 303
        assert kept.sign_in(*credentials(server, "admin")).status_code == 303
        assert leaked.get(KEYS_PAGE).status_code == kept.get(KEYS_PAGE).status_code == 200

        server.stop()  # the admin rotates one-key's secret: same access key, new secret, restart
        principals_file = server.state_dir / "principals.yaml"
        principals = yaml.safe_load(principals_file.read_text())
        for entry in principals:
            if entry["name"] == "one-key":
                entry["secret_key"] += "-rotated"
        principals_file.write_text(yaml.safe_dump(principals))
        server.start()

        assert kept.get(KEYS_PAGE).status_code == 200  # sessions survive a restart ...
        refused = leaked.get(KEYS_PAGE)  # ... but not the rotation of their secret
        assert refused.status_code == 303 and refused.headers["Location"] == "/console/sign-in?ended=1"
    finally:
        server.stop()
