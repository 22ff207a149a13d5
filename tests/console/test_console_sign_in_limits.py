"""Session expiry and the rate limit of failed sign-ins, on a server of their own (its limits are spent here)."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator

import pytest
from console_harness import PROJECT, ConsoleHttp, api, credentials, start_server
from playwright.sync_api import BrowserContext, expect

from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import wait_for
from kubekms.server.console.throttle import FAILURES_PER_ACCESS_KEY, FAILURES_PER_CLIENT

SESSION_SECONDS = 2


@pytest.fixture(scope="module")
def short_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    running = start_server(tmp_path_factory.mktemp("console-limits"), session_seconds=SESSION_SECONDS)
    yield running
    running.stop()


def test_a_session_ends_at_its_time(context: BrowserContext, short_server: KMSServer) -> None:
    page = context.new_page()
    page.goto(short_server.endpoint + "/console/sign-in")
    access_key, secret_key = credentials(short_server, "admin")
    page.get_by_label("Access key").fill(access_key)
    page.get_by_label("Secret").fill(secret_key)
    clicked = time.time()
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/console/projects$"))  # no project has keys on this server yet
    cookie = next(c for c in context.cookies() if c["name"] == "kubekms-console")
    # Max-Age: SESSION_SECONDS from the sign-in's answer, which came between the click and now (the page load
    # after it can itself take longer than SESSION_SECONDS on a loaded machine: not measured from now alone)
    assert clicked + SESSION_SECONDS - 1 < cookie["expires"] <= time.time() + SESSION_SECONDS + 1

    def ended() -> bool:
        answer = page.request.get(f"{short_server.endpoint}/console/p/{PROJECT}/keys", max_redirects=0)
        return answer.status == 303 and answer.headers["location"] == "/console/sign-in?ended=1"

    context.add_cookies([{**cookie, "expires": -1}])  # the browser keeps it: the server must refuse it on its own
    wait_for(ended, SESSION_SECONDS + 10, "the session to end")
    page.goto(f"{short_server.endpoint}/console/p/{PROJECT}/keys")
    expect(page.get_by_role("status")).to_have_text("Your session has ended. Sign in again.")


def test_failed_sign_ins_are_rate_limited_per_access_key(short_server: KMSServer) -> None:
    access_key, secret_key = credentials(short_server, "admin")
    client = ConsoleHttp(short_server.endpoint)
    for _ in range(FAILURES_PER_ACCESS_KEY):
        assert client.sign_in(access_key, "wrong-" + secrets.token_hex(8)).status_code == 401
    refused = client.sign_in(access_key, secret_key)  # the right secret, but not checked any more
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "too many failed sign-ins" in refused.text
    other_key, other_secret = credentials(short_server, "reader")  # another access key from the same client
    assert client.sign_in(other_key, other_secret).status_code == 303


def test_failed_sign_ins_are_rate_limited_per_client(short_server: KMSServer) -> None:
    client = ConsoleHttp(short_server.endpoint)
    answers = [client.sign_in("AK" + secrets.token_hex(8), "x").status_code for _ in range(FAILURES_PER_CLIENT)]
    assert answers.count(401) >= FAILURES_PER_CLIENT - FAILURES_PER_ACCESS_KEY  # the previous test's failures count
    reader_key, reader_secret = credentials(short_server, "one-key")
    refused = client.sign_in(reader_key, reader_secret)
    assert refused.status_code == 429
    assert reader_secret not in refused.text


def test_wire_calls_are_not_limited_by_console_failures(short_server: KMSServer) -> None:
    assert api(short_server, "list_keys").total == 0
