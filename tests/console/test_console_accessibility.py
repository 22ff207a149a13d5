"""Accessibility (axe-core in the page), keyboard use and a phone-sized screen, on the console's main pages."""

from __future__ import annotations

import re

from axe_playwright_python.sync_playwright import Axe
from console_harness import ONLY_KEY, PROJECT, api, credentials
from playwright.sync_api import BrowserContext, Page, expect

from kubekms.devenv.kmsserver import KMSServer

SERIOUS = ("serious", "critical")


def serious_violations(page: Page) -> list[str]:
    results = Axe().run(page).response["violations"]
    return [f"{v['id']} ({v['impact']}): {v['help']}" for v in results if v["impact"] in SERIOUS]


def sign_in_by_keyboard(page: Page, server: KMSServer) -> None:
    page.goto(server.endpoint + "/console/sign-in")
    expect(page.get_by_label("Access key")).to_be_focused()  # autofocus: type at once
    access_key, secret_key = credentials(server, "admin")
    page.keyboard.type(access_key)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Secret")).to_be_focused()
    page.keyboard.type(secret_key)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(rf"/console/p/{PROJECT}/keys$"))
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")  # past the header: the first control of the page itself
    expect(page.get_by_role("link", name="Create key")).to_be_focused()


def test_main_pages_have_no_serious_axe_violations(context: BrowserContext, server: KMSServer) -> None:
    key_id = api(server, "describe_key", ONLY_KEY).key_id
    page = context.new_page()
    page.goto(server.endpoint + "/console/sign-in")
    found = {"sign-in": serious_violations(page)}
    sign_in_by_keyboard(page, server)
    for name, path in {
        "key list": f"/console/p/{PROJECT}/keys",
        "key page": f"/console/p/{PROJECT}/keys/{key_id}",
        "schedule deletion": f"/console/p/{PROJECT}/keys/{key_id}/delete",
        "create key": f"/console/p/{PROJECT}/new-key",
        "account": f"/console/p/{PROJECT}/account",
        "projects": "/console/projects",
        "audit log": f"/console/p/{PROJECT}/audit",
        "refusal": f"/console/p/{PROJECT}/keys/no-such-key",
    }.items():
        page.goto(server.endpoint + path)
        found[name] = serious_violations(page)
    assert {name: problems for name, problems in found.items() if problems} == {}


def test_readable_on_a_phone(browser_phone: BrowserContext, server: KMSServer) -> None:
    page = browser_phone.new_page()
    sign_in_by_keyboard(page, server)
    key_id = api(server, "describe_key", ONLY_KEY).key_id
    for path in (f"/console/p/{PROJECT}/keys", f"/console/p/{PROJECT}/keys/{key_id}"):
        page.goto(server.endpoint + path)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px on a 375px-wide screen"
        expect(page.get_by_role("button", name="Sign out")).to_be_in_viewport()
