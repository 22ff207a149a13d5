"""Real ``kubekms server`` processes with the console on, real Chromium (Debian's) through Playwright.

Chromium comes from Debian's package: when it is missing, it is installed here with apt-get
as root (the way scripts/node-prereqs installs the node tier's packages); a non-root run
without it skips the browser tests with the command to run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from console_http import ConsoleHttp
from playwright.sync_api import Browser, BrowserContext, Playwright, sync_playwright

from kubekms.devenv.kmsserver import KMSServer, Principal

CHROMIUM = "/usr/bin/chromium"
PROJECT = "proj1"
ONLY_KEY, OTHER_KEY = "only-key", "other-key"
PRINCIPALS = (
    Principal("one-key", keys=(ONLY_KEY,)),  # every operation, on one key only
    Principal("reader", actions=("describe-key", "list-keys", "get-key-rotation-status")),
)


def _install_chromium() -> None:
    if os.path.exists(CHROMIUM):
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(f"the browser tests need Debian's chromium at {CHROMIUM}: as root, apt-get install -y chromium")
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "-q"]
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*apt, "update"], check=True, env=environment, stdout=subprocess.DEVNULL)
    subprocess.run([*apt, "install", "-y", "chromium"], check=True, env=environment, stdout=subprocess.DEVNULL)


def start_server(state_dir: Path, **console: object) -> KMSServer:
    """A server with the console settings ``console`` (written into the launcher's server.yaml before start)."""
    server = KMSServer(state_dir, principals=PRINCIPALS, project_id=PROJECT)
    if console:
        config_path = state_dir / "server.yaml"
        config = yaml.safe_load(config_path.read_text())
        config_path.write_text(yaml.safe_dump({**config, "console": console}))
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


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    running = start_server(tmp_path_factory.mktemp("console"))
    try:
        api(running, "create_key", ONLY_KEY)
        api(running, "create_key", OTHER_KEY)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    _install_chromium()
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    yield chromium
    chromium.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile per test (its own cookies)."""
    fresh = browser.new_context()
    fresh.set_default_timeout(10_000)
    yield fresh
    fresh.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the browser tests save their screenshots (KUBEKMS_SCREENSHOTS, else a pytest temp folder)."""
    wanted = os.environ.get("KUBEKMS_SCREENSHOTS")
    folder = Path(wanted) if wanted else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def admin_http(server: KMSServer) -> ConsoleHttp:
    return ConsoleHttp.signed_in(server.endpoint, *credentials(server, "admin"))


@pytest.fixture
def browser_phone(browser: Browser) -> Iterator[BrowserContext]:
    """A phone-sized profile (375 x 667 CSS pixels, touch, 2x pixels)."""
    phone = browser.new_context(viewport={"width": 375, "height": 667}, device_scale_factor=2, has_touch=True,
                                is_mobile=True)  # fmt: skip
    phone.set_default_timeout(10_000)
    yield phone
    phone.close()
