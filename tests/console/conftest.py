"""Real ``kubekms server`` processes with the console on, real Chromium (Debian's) through Playwright.

Chromium comes from Debian's package, installed by scripts/node-prereqs (run by scripts/test);
a run without it skips the browser tests with the command to run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from console_harness import ONLY_KEY, OTHER_KEY, ConsoleHttp, api, credentials, start_server
from playwright.sync_api import Browser, BrowserContext, Playwright, sync_playwright

from kubekms.devenv.kmsserver import KMSServer

CHROMIUM = "/usr/bin/chromium"


def _require_chromium() -> None:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"the browser tests need Debian's chromium at {CHROMIUM}: run scripts/node-prereqs as root")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    running = start_server(tmp_path_factory.mktemp("console"))
    try:
        api(running, "create_key", ONLY_KEY)
        api(running, "create_key", OTHER_KEY)
        yield running
    finally:
        running.stop()


# module scope, not session: Playwright's sync API keeps an event loop running in this thread
# while it is started, which would break asyncio.run and pytest-asyncio in the modules after ours
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    _require_chromium()
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
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
