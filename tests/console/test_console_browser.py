"""The console in real headless Chromium against a real server; every change verified through the API."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from console_harness import ONLY_KEY, OTHER_KEY, PROJECT, api, credentials, csrf_of, sign_in
from playwright.sync_api import BrowserContext, Page, expect

from kubekms.backend import KeyState
from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import wait_for
from kubekms.errors import AccessDenied


def open_key(page: Page, alias: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Keys").click()
    page.get_by_role("link", name=alias, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(alias)


def test_sign_in_create_rotate_disable_enable(context: BrowserContext, server: KMSServer, screenshots: Path) -> None:
    page = sign_in(context, server)
    expect(page.get_by_role("link", name=ONLY_KEY, exact=True)).to_be_visible()
    page.get_by_role("link", name="Create key").click()
    page.get_by_label("Alias").fill("web-key")
    page.get_by_label("Description").fill("made in the browser")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("status")).to_have_text("Key web-key created.")
    key = api(server, "describe_key", "web-key")
    assert key.state is KeyState.ENABLED and key.description == "made in the browser"
    assert page.url.endswith(f"/keys/{key.key_id}")

    page.get_by_role("button", name="Rotate now").click()
    expect(page.get_by_role("status")).to_contain_text("version 2 is now primary")
    assert api(server, "describe_key", key.key_id).current_version == 2

    page.get_by_label("Interval in days").fill("30")
    page.get_by_role("button", name="Turn on automatic rotation").click()
    rotation = api(server, "get_rotation_status", key.key_id)
    assert rotation.enabled and rotation.interval_days == 30

    page.get_by_role("button", name="Disable key").click()
    expect(page.get_by_role("status")).to_have_text("The key is disabled.")
    assert api(server, "describe_key", key.key_id).state is KeyState.DISABLED
    expect(page.get_by_role("button", name="Rotate now")).to_have_count(0)  # a disabled key cannot rotate
    page.get_by_role("button", name="Enable key").click()
    assert api(server, "describe_key", key.key_id).state is KeyState.ENABLED

    page.get_by_label("New alias").fill("web-key-2")
    page.get_by_role("button", name="Add alias").click()
    page.get_by_label("Tag key").fill("team")
    page.get_by_label("Value").fill("payments")
    page.get_by_role("button", name="Add tag").click()
    described = api(server, "describe_key", key.key_id)
    assert "web-key-2" in described.aliases and described.tags == {"team": "payments"}
    page.screenshot(path=str(screenshots / "console-key.png"), full_page=True)

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Keys").click()
    page.get_by_label("State").select_option("enabled")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("tbody tr")).to_have_count(3)  # only-key, other-key, web-key
    page.screenshot(path=str(screenshots / "console-keys.png"), full_page=True)
    page.get_by_label("Find by id, alias or tag").fill("team=payments")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("tbody tr")).to_have_count(1)


def test_schedule_and_cancel_deletion(context: BrowserContext, server: KMSServer) -> None:
    key = api(server, "create_key", "doomed-key")
    page = sign_in(context, server)
    open_key(page, "doomed-key")
    page.get_by_role("link", name="Schedule deletion…").click()
    page.get_by_label("Waiting period in days").fill("7")
    page.get_by_label("to confirm").fill("not-the-alias")
    page.get_by_role("button", name="Schedule deletion").click()
    expect(page.get_by_role("alert")).to_contain_text("to confirm the deletion")
    assert api(server, "describe_key", key.key_id).state is KeyState.ENABLED

    page.go_back()
    page.get_by_label("Waiting period in days").fill("3")  # below the 7-day minimum
    page.get_by_label("to confirm").fill("doomed-key")
    page.get_by_role("button", name="Schedule deletion").click()
    expect(page.get_by_role("alert")).to_contain_text("pending days must be from 7 to 1096")
    assert api(server, "describe_key", key.key_id).state is KeyState.ENABLED

    page.go_back()
    page.get_by_label("Waiting period in days").fill("7")
    page.get_by_label("to confirm").fill("doomed-key")
    page.get_by_role("button", name="Schedule deletion").click()
    expect(page.get_by_role("status")).to_contain_text("scheduled for deletion in 7 days")
    pending = api(server, "describe_key", key.key_id)
    assert pending.state is KeyState.PENDING_DELETION and pending.deletion_date is not None
    assert abs(pending.deletion_date - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=5)
    expect(page.get_by_text(pending.deletion_date.strftime("%Y-%m-%d"))).to_be_visible()

    page.get_by_role("button", name="Cancel deletion").click()
    assert api(server, "describe_key", key.key_id).state is KeyState.DISABLED


def test_a_principal_limited_to_one_key_sees_only_it(context: BrowserContext, server: KMSServer) -> None:
    page = sign_in(context, server, "one-key")
    expect(page.get_by_role("link", name=ONLY_KEY, exact=True)).to_be_visible()
    expect(page.get_by_role("link", name=OTHER_KEY)).to_have_count(0)
    expect(page.get_by_role("link", name="Create key")).to_have_count(0)
    expect(page.get_by_role("link", name="Account")).to_have_count(0)

    other = api(server, "describe_key", OTHER_KEY)
    answer = page.request.get(f"{server.endpoint}/console/p/{PROJECT}/keys/{other.key_id}", max_redirects=0)
    assert answer.status == 403 and "KMS.0306" in answer.text()

    forged = page.request.post(
        f"{server.endpoint}/console/p/{PROJECT}/keys/{other.key_id}/disable", form={"csrf": csrf_of(page)}
    )
    with pytest.raises(AccessDenied) as refusal:
        api(server, "disable_key", other.key_id, principal="one-key")
    assert forged.status == 403
    assert refusal.value.code == "KMS.0306" and refusal.value.code in forged.text()
    assert f"may not call disable-key on key {other.key_id!r}".replace("'", "&#39;") in forged.text()
    assert api(server, "describe_key", OTHER_KEY).state is KeyState.ENABLED

    page.get_by_role("link", name=ONLY_KEY, exact=True).click()
    page.get_by_role("button", name="Disable key").click()
    assert api(server, "describe_key", ONLY_KEY).state is KeyState.DISABLED
    page.get_by_role("button", name="Enable key").click()
    assert api(server, "describe_key", ONLY_KEY).state is KeyState.ENABLED


def test_a_reader_gets_no_buttons_and_the_apis_refusal(context: BrowserContext, server: KMSServer) -> None:
    page = sign_in(context, server, "reader")
    open_key(page, OTHER_KEY)
    expect(page.get_by_role("heading", name="Rotation")).to_be_visible()
    expect(page.locator("main button")).to_have_count(0)
    expect(page.get_by_role("link", name="Schedule deletion…")).to_have_count(0)
    expect(page.get_by_role("heading", name="Aliases")).to_have_count(0)  # list-aliases is not granted

    key_id = api(server, "describe_key", OTHER_KEY).key_id
    forged = page.request.post(f"{page.url.rsplit('/', 1)[0]}/{key_id}/schedule-deletion",
                               form={"csrf": csrf_of(page), "pending_days": "7", "confirm": OTHER_KEY})  # fmt: skip
    assert forged.status == 403 and "KMS.0307" in forged.text()
    assert api(server, "describe_key", key_id).state is KeyState.ENABLED


def test_csrf_token_missing_or_wrong_is_refused(context: BrowserContext, server: KMSServer) -> None:
    page = sign_in(context, server)
    key_id = api(server, "describe_key", OTHER_KEY).key_id
    url = f"{server.endpoint}/console/p/{PROJECT}/keys/{key_id}/disable"
    for form in ({}, {"csrf": ""}, {"csrf": "x" * 43}, {"csrf": csrf_of(page) + "x"}, {"csrf": "ü"}):
        answer = page.request.post(url, form=form)
        assert answer.status == 403 and "CONSOLE.CSRF" in answer.text(), form
    assert api(server, "describe_key", key_id).state is KeyState.ENABLED


def test_sign_out_ends_the_session_on_the_server(context: BrowserContext, server: KMSServer) -> None:
    page = sign_in(context, server)
    cookie = next(c for c in context.cookies() if c["name"] == "kubekms-console")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/console/sign-in\?signed-out=1$"))
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    context.add_cookies([cookie])  # a stolen copy of the cookie is worth nothing after sign-out
    answer = page.request.get(f"{server.endpoint}/console/p/{PROJECT}/keys", max_redirects=0)
    assert answer.status == 303 and answer.headers["location"].startswith("/console/sign-in")


def test_cookies_headers_and_no_secret_anywhere(context: BrowserContext, server: KMSServer) -> None:
    seen: list[str] = []
    headers: list[dict[str, str]] = []
    context.on("response", lambda response: headers.append(response.all_headers()))
    page = sign_in(context, server)
    seen.append(page.content())
    open_key(page, ONLY_KEY)
    seen.append(page.content())
    page.get_by_role("link", name="Schedule deletion…").click()
    seen.append(page.content())

    cookie = next(c for c in context.cookies() if c["name"] == "kubekms-console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/console/"
    assert cookie["expires"] > 0  # a session cookie with an end, not one that lives as long as the browser
    pages = [h for h in headers if h.get("content-type", "").startswith("text/html")]
    assert pages
    for answer in pages:
        assert answer["content-security-policy"].startswith("default-src 'none'")
        assert "frame-ancestors 'none'" in answer["content-security-policy"]
        assert answer["x-frame-options"] == "DENY" and answer["cache-control"] == "no-store"
        assert answer["x-content-type-options"] == "nosniff"
    assert all("<script" not in html for html in seen)

    access_key, secret_key = credentials(server, "admin")
    assert all(secret_key not in html for html in seen)
    assert all(secret_key not in c["value"] and access_key not in c["value"] for c in context.cookies())
    wait_for(lambda: '"operation":"describe-key"' in server.audit_log.read_text(), 10, "audit lines")
    assert secret_key not in server.audit_log.read_text() and secret_key not in server.log.read_text()


def test_console_calls_are_in_the_audit_log_with_the_principal(context: BrowserContext, server: KMSServer) -> None:
    key = api(server, "create_key", "audited-key")
    page = sign_in(context, server, "admin")
    open_key(page, "audited-key")
    page.get_by_role("button", name="Disable key").click()

    def disable_line() -> str | None:
        lines = server.audit_log.read_text().splitlines()
        return next((line for line in lines if '"operation":"disable-key"' in line and key.key_id in line), None)

    line = wait_for(disable_line, 10, "the console's disable-key in the audit log")
    assert '"principal":"admin"' in line and '"result":"OK"' in line and f'"project":"{PROJECT}"' in line

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit log").click()
    page.get_by_label("Key id").fill(key.key_id)
    page.get_by_label("Operation").select_option("disable-key")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("admin")
    expect(rows.first).to_contain_text("OK (200)")


def test_only_a_principal_of_every_key_and_operation_reads_the_audit_log(
    context: BrowserContext, server: KMSServer
) -> None:
    for principal in ("reader", "one-key"):
        page = sign_in(context, server, principal)
        expect(page.get_by_role("link", name="Audit log")).to_have_count(0)
        answer = page.request.get(f"{server.endpoint}/console/p/{PROJECT}/audit", max_redirects=0)
        assert answer.status == 403 and "may not read the audit log" in answer.text()
        page.get_by_role("button", name="Sign out").click()
