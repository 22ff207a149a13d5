"""Login CSRF over TLS through a planted sign-in cookie (cookie tossing by a same-site host).

The sign-in form's CSRF token is bound to the ``kubekms-console-sign-in`` cookie. Over TLS the session cookie is a
``__Host-`` cookie, but the sign-in cookie was not: a host of the same site (``evil.example.com`` beside
``kms.example.com``: same site, so SameSite=Strict does not stop it) or a network attacker on plain HTTP can set
``kubekms-console-sign-in=<known value>`` for the console's host (Domain=example.com, or a non-Secure cookie),
then submit the sign-in form from its own page with that value and its own credentials: the victim's browser is
signed in as the attacker's principal, and what it does next (keys created, described) is done as the attacker.
Over TLS the sign-in cookie is now ``__Host-kubekms-console-sign-in`` (no Domain, Secure, Path=/: no other host
can set it) and only that one is read.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "console"))
from console_harness import credentials
from test_console_switch import _self_signed

from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import ManagedProcess, kubekms_argv

PLAIN_NAME = "kubekms-console-sign-in"
HOST_NAME = "__Host-kubekms-console-sign-in"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KMSServer, str, str]]:
    """A server speaking TLS: (server, endpoint, CA file)."""
    folder = tmp_path_factory.mktemp("s12-login-csrf")
    server = KMSServer(folder)
    cert_path, key_path = _self_signed(folder)
    config_path = folder / "server.yaml"
    config = yaml.safe_load(config_path.read_text())
    config_path.write_text(yaml.safe_dump({**config, "tls_cert": str(cert_path), "tls_key": str(key_path)}))
    process = ManagedProcess("kubekms-server-tls", [*kubekms_argv("server", "--config", str(config_path)), "--init"],
                             folder / "server.log")  # fmt: skip
    endpoint = f"https://127.0.0.1:{server.port}"

    def healthy() -> bool:
        return requests.get(f"{endpoint}/healthz", verify=str(cert_path), timeout=2).status_code == 200

    process.start()
    try:
        process.wait_until(healthy, 30, "serving /healthz over TLS")
        yield server, endpoint, str(cert_path)
    finally:
        process.stop()


def _session_cookies(answer: requests.Response) -> list[str]:
    return [c for c in answer.raw.headers.getlist("Set-Cookie") if c.startswith("__Host-kubekms-console=")]


def test_a_planted_sign_in_cookie_does_not_sign_the_browser_in(tls: tuple[KMSServer, str, str]) -> None:
    server, endpoint, ca = tls
    victim = requests.Session()
    victim.cookies.set(PLAIN_NAME, "known-to-the-attacker", domain="127.0.0.1", path="/console/")
    attacker_key, attacker_secret = credentials(server, "admin")  # the attacker's own principal
    answer = victim.post(f"{endpoint}/console/sign-in", allow_redirects=False, verify=ca, timeout=10,
                         data={"csrf": "known-to-the-attacker", "access_key": attacker_key,
                               "secret_key": attacker_secret})  # fmt: skip
    assert answer.status_code == 403 and "CONSOLE.CSRF" in answer.text, answer.status_code
    assert not _session_cookies(answer)


def test_over_tls_the_sign_in_cookie_is_host_bound_and_signing_in_works(tls: tuple[KMSServer, str, str]) -> None:
    server, endpoint, ca = tls
    browser = requests.Session()
    page = browser.get(f"{endpoint}/console/sign-in", verify=ca, timeout=10)
    cookie = next(c for c in page.raw.headers.getlist("Set-Cookie") if c.split("=", 1)[0] in (PLAIN_NAME, HOST_NAME))
    parts = [part.strip() for part in cookie.split(";")]
    assert parts[0].startswith(HOST_NAME + "=") and "Path=/" in parts and "Secure" in parts
    assert not any(part.lower().startswith("domain") for part in parts)
    token = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    access_key, secret_key = credentials(server, "admin")
    answer = browser.post(f"{endpoint}/console/sign-in", allow_redirects=False, verify=ca, timeout=10,
                          data={"csrf": token, "access_key": access_key, "secret_key": secret_key})  # fmt: skip
    assert answer.status_code == 303 and _session_cookies(answer)
    ended = [c for c in answer.raw.headers.getlist("Set-Cookie") if c.startswith(HOST_NAME + "=")]
    assert ended and "Max-Age=0" in ended[0]  # the sign-in cookie is removed once used
