"""A key's page in Chromium: one version disabled and enabled again, and who created the key.

A version's state is verified through the API by what it decrypts: a data key made under a
disabled version no longer decrypts, and does again once the version is enabled.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from console_harness import PROJECT, api, csrf_of, sign_in
from playwright.sync_api import BrowserContext, expect

from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import wait_for
from kubekms.errors import AccessDenied, Disabled
from kubekms.server.console.audit_page import creation_of


def test_disable_and_enable_one_version(context: BrowserContext, server: KMSServer) -> None:
    key = api(server, "create_key", "versioned-key")
    old = api(server, "create_data_key", key.key_id)
    assert old.key_version == 1
    api(server, "rotate_key", key.key_id)
    page = sign_in(context, server)
    page.goto(f"{server.endpoint}/console/p/{PROJECT}/keys/{key.key_id}")
    versions = page.get_by_role("region", name="Versions")
    expect(versions.locator("tbody tr")).to_have_count(2)
    expect(versions.get_by_role("button", name="Disable version 2")).to_have_count(0)  # primary: rotate first

    versions.get_by_role("button", name="Disable version 1").click()
    expect(page.get_by_role("status")).to_have_text("Version 1 is disabled.")
    with pytest.raises(Disabled):
        api(server, "decrypt_data_key", key.key_id, old.ciphertext)
    assert api(server, "create_data_key", key.key_id).key_version == 2  # the key itself still works

    versions.get_by_role("button", name="Enable version 1").click()
    expect(page.get_by_role("status")).to_have_text("Version 1 is enabled.")
    assert api(server, "decrypt_data_key", key.key_id, old.ciphertext) == old.plaintext

    forged = page.request.post(f"{page.url}/disable-version", form={"csrf": csrf_of(page), "version": "2"})
    assert forged.status == 400 and "is the current version" in forged.text()  # the keystore's own refusal


def test_a_principal_without_disable_key_gets_no_version_button_and_the_apis_refusal(
    context: BrowserContext, server: KMSServer
) -> None:
    key = api(server, "create_key", "reader-versions")
    old = api(server, "create_data_key", key.key_id)
    api(server, "rotate_key", key.key_id)
    page = sign_in(context, server, "reader")
    page.goto(f"{server.endpoint}/console/p/{PROJECT}/keys/{key.key_id}")
    expect(page.get_by_role("region", name="Versions").locator("tbody tr")).to_have_count(2)
    expect(page.locator("main button")).to_have_count(0)

    forged = page.request.post(f"{page.url}/disable-version", form={"csrf": csrf_of(page), "version": "1"})
    with pytest.raises(AccessDenied) as refusal:
        api(server, "disable_key", key.key_id, principal="reader")
    assert forged.status == 403 and refusal.value.code in forged.text() and "disable-key" in forged.text()
    assert api(server, "decrypt_data_key", key.key_id, old.ciphertext) == old.plaintext  # version 1 still enabled


def test_the_key_page_says_who_created_the_key_when_the_audit_log_does(
    context: BrowserContext, server: KMSServer
) -> None:
    page = sign_in(context, server, "admin")
    page.get_by_role("link", name="Create key").click()
    page.get_by_label("Alias").fill("made-by-admin")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("status")).to_have_text("Key made-by-admin created.")
    key = api(server, "describe_key", "made-by-admin")
    wait_for(lambda: creation_of(server.audit_log, PROJECT, key.key_id), 10, "the create-key line on disk")
    page.reload()
    expect(page.get_by_text(re.compile(r"^admin, \d{4}-\d\d-\d\d \d\d:\d\d UTC \(audit log\)$"))).to_be_visible()

    by_api = api(server, "create_key", "made-by-api")  # through the v1.0 wire: its line names the new key too
    wait_for(lambda: creation_of(server.audit_log, PROJECT, by_api.key_id), 10, "the wire's create-key line on disk")
    page.goto(f"{server.endpoint}/console/p/{PROJECT}/keys/{by_api.key_id}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("made-by-api")
    expect(page.get_by_text(re.compile(r"^admin, \d{4}-\d\d-\d\d \d\d:\d\d UTC \(audit log\)$"))).to_be_visible()


def test_creation_is_read_from_the_audit_file_while_it_holds_the_line(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    assert creation_of(path, PROJECT, "k1") is None  # no file yet
    lines = [
        {"time": "2026-01-02T03:04:05.006Z", "principal": "alice", "project": PROJECT, "operation": "create-key",
         "key_id": "k1", "result": "KMS.0301", "status": 403},
        {"time": "2026-01-02T03:05:00.000Z", "principal": "bob", "project": PROJECT, "operation": "create-key",
         "key_id": "k1", "result": "OK", "status": 200},
        {"time": "2026-01-02T03:06:00.000Z", "principal": "eve", "project": "other", "operation": "create-key",
         "key_id": "k2", "result": "OK", "status": 200},
    ]  # fmt: skip
    path.write_text("".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines) + "not json\n")
    found = creation_of(path, PROJECT, "k1")
    assert found is not None and found.principal == "bob" and found.time.minute == 5
    assert creation_of(path, PROJECT, "k2") is None  # another project's line
    aws_line = {"time": "2026-01-02T03:07:00.000Z", "principal": "carol", "project": PROJECT,
                "operation": "aws:CreateKey", "key_id": "k3", "result": "OK", "status": 200}  # fmt: skip
    decrypt_line = dict(aws_line, operation="aws:Decrypt", principal="dave", key_id="k4")
    with path.open("a") as handle:
        handle.writelines(json.dumps(line, separators=(",", ":")) + "\n" for line in (aws_line, decrypt_line))
    found_aws = creation_of(path, PROJECT, "k3")
    assert found_aws is not None and found_aws.principal == "carol"
    assert creation_of(path, PROJECT, "k4") is None  # a use of a key is not its creation
    path.write_text(path.read_text().split("\n", 2)[2])  # the file rotated away: the line is gone
    assert creation_of(path, PROJECT, "k1") is None
