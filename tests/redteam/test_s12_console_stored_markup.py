"""Markup stored through the AWS wire (description, tag keys and values) and reflected through URLs (key refs,
searches, audit filters) stays text on every console page in a real browser, and the pages' Content-Security-Policy
refuses an inline script even when one gets into the document (checked by inserting one).

A regression guard for what held in session 12's red team (nothing here failed): the console has no script of its
own, so any script on its pages would be an injection.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "console"))
from console_harness import credentials, start_server
from playwright.sync_api import Dialog, sync_playwright

from kubekms.devenv.kmsserver import KMSServer

CHROMIUM = "/usr/bin/chromium"
PROJECT = "default"  # the AWS wire's account
PAYLOADS = ['"><img src=x id=injected onerror=alert(1)>', "'><svg id=injected onload=alert(2)>",
            "</title><script>alert(3)</script>", "<a id=injected href=javascript:alert(4)>x</a>"]  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    running = start_server(tmp_path_factory.mktemp("s12-markup"))
    try:
        yield running
    finally:
        running.stop()


def test_stored_and_reflected_markup_never_runs(server: KMSServer) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"needs Debian's chromium at {CHROMIUM}: run scripts/node-prereqs as root")
    aws = server.aws_client(validate=False)
    tags = [{"TagKey": f"k{number}{payload}"[:128], "TagValue": payload} for number, payload in enumerate(PAYLOADS)]
    key_id = aws.create_key(Description="".join(PAYLOADS)[:255], Tags=tags)["KeyMetadata"]["KeyId"]
    for payload in PAYLOADS:  # audit lines naming the payload as a key
        with pytest.raises(aws.exceptions.ClientError):
            aws.describe_key(KeyId=payload)
    key_page = f"/console/p/{PROJECT}/keys/{key_id}"
    pages = [f"/console/p/{PROJECT}/keys", key_page, f"{key_page}/delete", f"/console/p/{PROJECT}/audit"]
    for payload in PAYLOADS[:2]:  # one breaking out of an attribute, one an element
        quoted = quote(payload, safe="")
        pages += [f"/console/p/{PROJECT}/keys/{quoted}", f"/console/p/{PROJECT}/keys?q={quoted}",
                  f"/console/p/{PROJECT}/keys?q=t%3D{quoted}", f"/console/p/{PROJECT}/audit?principal={quoted}",
                  f"/console/p/{PROJECT}/audit?key={quoted}", f"/console/projects?open={quoted}",
                  f"/console/{quoted}"]  # fmt: skip
    dialogs: list[str] = []
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_context().new_page()
            page.set_default_timeout(10_000)

            def dismiss(dialog: Dialog) -> None:
                dialogs.append(dialog.message)
                dialog.dismiss()

            page.on("dialog", dismiss)
            page.goto(server.endpoint + "/console/sign-in")
            access_key, secret_key = credentials(server, "admin")
            page.get_by_label("Access key").fill(access_key)
            page.get_by_label("Secret").fill(secret_key)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"**/console/p/{PROJECT}/keys")
            seen = 0
            for path in pages:
                page.goto(server.endpoint + path)
                assert page.locator("#injected, script").count() == 0, path
                seen += "alert(" in page.content()  # the payload is on the page, as text
            assert seen >= 4  # the payloads were shown, not dropped
            page.goto(server.endpoint + key_page)
            ran = page.evaluate(
                """() => new Promise((done) => {
                    document.addEventListener('securitypolicyviolation', () => done(window.__ran === true));
                    const script = document.createElement('script');
                    script.textContent = 'window.__ran = true';
                    document.body.appendChild(script);
                    setTimeout(() => done(window.__ran === true), 2000);
                })"""
            )
            assert ran is False  # the page's CSP refused the inline script
        finally:
            browser.close()
    assert dialogs == []
