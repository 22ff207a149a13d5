"""The console tests' harness: a real server with the console's principals, calls over the wire, plain HTTP.

(A module of its own, not conftest: ``from conftest import`` finds whichever tests folder's
conftest comes first on sys.path when the whole suite runs.)
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
import yaml
from playwright.sync_api import BrowserContext, Page, expect

from kubekms.devenv.kmsserver import KMSServer, Principal

PROJECT = "proj1"
ONLY_KEY, OTHER_KEY = "only-key", "other-key"
PRINCIPALS = (
    Principal("one-key", keys=(ONLY_KEY,)),  # every operation, on one key only
    Principal("reader", actions=("describe-key", "list-keys", "get-key-rotation-status")),
)


def start_server(state_dir: Path, server_config: dict[str, Any] | None = None, **console: object) -> KMSServer:
    """A server with ``server_config`` and the console settings ``console`` in its server.yaml."""
    server = KMSServer(state_dir, principals=PRINCIPALS, project_id=PROJECT)
    if console or server_config:
        config_path = state_dir / "server.yaml"
        config = yaml.safe_load(config_path.read_text())
        config_path.write_text(yaml.safe_dump({**config, **(server_config or {}), "console": console}))
    server.start()
    return server


def api(server: KMSServer, operation: str, *args: Any, principal: str = "admin", **kwargs: Any) -> Any:
    """One backend call over the v1.0 wire as ``principal``, from a thread of its own.

    Playwright's sync API keeps an event loop running in the test's thread, where
    KMSServer.call (asyncio.run) cannot start another.
    """
    with ThreadPoolExecutor(max_workers=1) as worker:
        return worker.submit(server.call, operation, *args, principal=principal, **kwargs).result()


def credentials(server: KMSServer, principal: str) -> tuple[str, str]:
    data = yaml.safe_load(server.credentials_file(principal).read_text())
    return data["access_key"], data["secret_key"]


CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class ConsoleHttp:
    def __init__(self, endpoint: str, *, new_connections: bool = False) -> None:
        """``new_connections``: a connection per request (so that requests reach every worker process)."""
        self.endpoint = endpoint
        self.session = requests.Session()
        if new_connections:
            self.session.headers["Connection"] = "close"

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return self.session.get(self.endpoint + path, allow_redirects=False, timeout=10, **kwargs)

    def post(self, path: str, **kwargs: object) -> requests.Response:
        return self.session.post(self.endpoint + path, allow_redirects=False, timeout=10, **kwargs)

    def csrf(self, path: str = "/console/projects") -> str:
        page = self.get(path)
        match = CSRF.search(page.text)
        assert match, f"no CSRF token on {path} ({page.status_code})"
        return match.group(1)

    def sign_in(self, access_key: str, secret_key: str) -> requests.Response:
        token = self.csrf("/console/sign-in")
        return self.post("/console/sign-in", data={"csrf": token, "access_key": access_key, "secret_key": secret_key})

    @classmethod
    def signed_in(cls, endpoint: str, access_key: str, secret_key: str) -> ConsoleHttp:
        client = cls(endpoint)
        answer = client.sign_in(access_key, secret_key)
        assert answer.status_code == 303 and answer.headers["Location"] == "/console/", answer.text
        return client


def sign_in(context: BrowserContext, server: KMSServer, principal: str = "admin") -> Page:
    page = context.new_page()
    page.goto(server.endpoint + "/console/")
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    access_key, secret_key = credentials(server, principal)
    page.get_by_label("Access key").fill(access_key)
    page.get_by_label("Secret").fill(secret_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(rf"/console/p/{PROJECT}/keys$"))
    return page


def csrf_of(page: Page) -> str:
    value = page.locator("input[name=csrf]").first.get_attribute("value")
    assert value
    return value
