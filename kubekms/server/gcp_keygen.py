"""``python -m kubekms.server.gcp_keygen EMAIL PROJECT KEY_FILE [TOKEN_URI]``: a service-account key for Cloud KMS.

Writes the client's service-account key JSON to KEY_FILE (mode 0600, refused if it exists) and
prints the ``gcp_service_account`` entry to add to a principal in the server's principals file.
The private key never leaves KEY_FILE; the server only ever holds the public key. TOKEN_URI (the
server's ``gcp.token_uri``) becomes the key file's ``token_uri``, for clients that fetch access tokens.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import yaml

from kubekms.server.gcp_auth import new_service_account_key


def write_key(client_email: str, project_id: str, key_file: Path, token_uri: str | None = None) -> str:
    """Write the key JSON (0600, never over an existing file); return the principals-file YAML entry."""
    key_json, public_pem = new_service_account_key(client_email, project_id)
    if token_uri:
        key_json["token_uri"] = token_uri
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(key_json, handle, indent=2)
    entry = {"gcp_service_account": {"client_email": client_email, "public_key": public_pem}}
    return yaml.safe_dump(entry, default_style=None, sort_keys=False)


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4) or (len(argv) == 4 and not argv[3].startswith(("https://", "http://"))):
        print(__doc__.strip().splitlines()[0], file=sys.stderr)
        return 2
    email, project_id, key_file, *token_uri = argv
    try:
        print(write_key(email, project_id, Path(key_file), *token_uri), end="")
    except FileExistsError:
        print(f"{key_file} exists; choose another path", file=sys.stderr)
        return 1
    except OSError as error:  # no such directory, a directory, no permission
        print(f"cannot write {key_file}: {error.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
