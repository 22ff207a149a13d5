"""Adversarial review of the console session binding (863d221).

The session cookie is ``<token>.<HMAC of the token under the principal's secret>``, compared with
``hmac.compare_digest``, which raises TypeError on a str holding a non-ASCII character. A cookie whose
binding part holds one (any client can send it; the token part being a live session's) must end the
session like any wrong binding (303 to the sign-in page), never a 500 / traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "console"))
from console_harness import PROJECT, ConsoleHttp, credentials, start_server

KEYS_PAGE = f"/console/p/{PROJECT}/keys"


def test_a_non_ascii_session_binding_is_a_sign_in_redirect_not_a_crash(tmp_path: Path) -> None:
    server = start_server(tmp_path / "state")
    try:
        client = ConsoleHttp.signed_in(server.endpoint, *credentials(server, "admin"))
        assert client.get(KEYS_PAGE).status_code == 200
        (cookie,) = list(client.session.cookies)
        token = cookie.value.partition(".")[0]
        for forged in (f"{token}.\u00e9".encode(), f"{token}.\u00e9\u00e9".encode(), "\u00e9.\u00e9".encode(),
                       f"{token}.".encode() + b"\xff\xfe"):  # fmt: skip
            answer = ConsoleHttp(server.endpoint).get(
                KEYS_PAGE, headers={"Cookie": f"{cookie.name}=".encode() + forged}
            )
            assert answer.status_code == 303, (forged, answer.status_code, answer.text[:200])
            assert answer.headers["Location"] == "/console/sign-in?ended=1"
        assert client.get(KEYS_PAGE).status_code == 200  # the real session is untouched
    finally:
        server.stop()
