"""list-keys ``key_state`` filter sent as a JSON number (otcextensions passes its keyword arguments through, so
``conn.kms.keys(key_state=3)`` sends ``3``; the wire doc: numbers arrive as strings or ints, accept both). It
was refused KMS.0308 as not a string; the filter must still refuse what is no key state."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from kubekms.devenv.kmsserver import KMSServer, kms_server
from kubekms.providers import Credentials
from kubekms.wire.signing import sign_headers

PROJECT = "proj-s12ks"
BASE = f"/v1.0/{PROJECT}/kms"


def v1_call(server: KMSServer, path: str, body: Any) -> tuple[int, Any]:
    """One v1.0 POST signed SDK-HMAC-SHA256 as the admin with ``body`` as JSON: (status, JSON answer)."""
    data, url = json.dumps(body).encode(), f"{server.endpoint}{BASE}/{path}"
    headers = sign_headers("POST", url, {"Content-Type": "application/json"}, data,
                           Credentials.from_file(server.credentials_file("admin")))  # fmt: skip
    answer = requests.post(url, data=data, headers=headers, timeout=20)
    return answer.status_code, answer.json()


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KMSServer, str, str]]:
    with kms_server(tmp_path_factory.mktemp("s12ks"), project_id=PROJECT) as running:
        made = [v1_call(running, "create-key", {"key_alias": name})[1]["key_info"]["key_id"] for name in ("on", "off")]
        assert v1_call(running, "disable-key", {"key_id": made[1]})[0] == 200
        yield running, made[0], made[1]


@pytest.mark.parametrize("as_sent", ["3", 3])
def test_key_state_filter_as_string_or_number(keys: tuple[KMSServer, str, str], as_sent: object) -> None:
    server, _, disabled = keys
    status, answer = v1_call(server, "list-keys", {"key_state": as_sent})
    assert status == 200, answer
    assert answer["keys"] == [disabled]


@pytest.mark.parametrize("as_sent", [0, 6, 7, -2, 22, True, 2.0, "02", " 2", [2]])
def test_what_is_no_key_state_is_refused(keys: tuple[KMSServer, str, str], as_sent: object) -> None:
    server, _, _ = keys
    status, answer = v1_call(server, "list-keys", {"key_state": as_sent})
    assert (status, answer["error"]["error_code"]) == (400, "KMS.0308"), answer
