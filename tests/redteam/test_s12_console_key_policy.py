"""A key's page must hold to the key's own policy as the wires do (least privilege, not only the principal's grant).

The page showed every alias and tag of a key whenever the principal's grant named list-aliases and list-key-tags,
though the key's policy denied that principal kms:ListAliases and kms:ListResourceTags (the AWS wire refuses both
calls); and a policy denying kms:GetKeyRotationStatus turned the whole page into a 403, so a principal that may
describe the key and manage it could no longer open it. The page now reads each section through the gate (the
key policy included, audited as on the wire) and leaves out a section it may not read.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "console"))
from console_harness import ConsoleHttp, credentials, start_server

from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import wait_for

PROJECT = "default"  # the AWS wire's account for these principals
ACCOUNT_STATEMENT = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{PROJECT}:root"}, "Action": "kms:*",
                     "Resource": "*"}  # fmt: skip


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    running = start_server(tmp_path_factory.mktemp("s12-console-policy"))
    try:
        yield running
    finally:
        running.stop()


def _key_denying(server: KMSServer, *actions: str) -> str:
    """A key with an alias and a tag whose policy denies the admin principal ``actions``."""
    aws = server.aws_client()
    key_id = str(aws.create_key(Tags=[{"TagKey": "h4-tag-key", "TagValue": "h4-tag-value"}])["KeyMetadata"]["KeyId"])
    aws.create_alias(AliasName=f"alias/h4-name-{key_id[:8]}", TargetKeyId=key_id)
    deny = {"Effect": "Deny", "Principal": {"AWS": f"arn:aws:iam::{PROJECT}:user/admin"}, "Action": list(actions),
            "Resource": "*"}  # fmt: skip
    policy = json.dumps({"Version": "2012-10-17", "Statement": [ACCOUNT_STATEMENT, deny]})
    aws.put_key_policy(KeyId=key_id, PolicyName="default", BypassPolicyLockoutSafetyCheck=True, Policy=policy)
    return key_id


def _refused_in_audit(server: KMSServer, operation: str, key_id: str) -> bool:
    """The console asked as the wire does, and its refusal is in the audit log."""
    entries = [json.loads(line) for line in server.audit_log.read_text().splitlines() if line.strip()]
    return any(e["operation"] == operation and e["key_id"] == key_id and e["status"] == 403 for e in entries)


def test_a_key_policy_denying_aliases_and_tags_hides_them_on_the_key_page(server: KMSServer) -> None:
    key_id = _key_denying(server, "kms:ListAliases", "kms:ListResourceTags")
    aws = server.aws_client()
    with pytest.raises(aws.exceptions.ClientError, match="AccessDenied"):
        aws.list_aliases(KeyId=key_id)  # the wire refuses both
    with pytest.raises(aws.exceptions.ClientError, match="AccessDenied"):
        aws.list_resource_tags(KeyId=key_id)
    console = ConsoleHttp.signed_in(server.endpoint, *credentials(server, "admin"))
    page = console.get(f"/console/p/{PROJECT}/keys/{key_id}")
    assert page.status_code == 200, page.text[:500]
    assert key_id in page.text  # the page itself is shown
    assert f"h4-name-{key_id[:8]}" not in page.text
    assert "h4-tag-key" not in page.text and "h4-tag-value" not in page.text
    wait_for(lambda: _refused_in_audit(server, "list-key-tags", key_id), 10.0, "the refused list-key-tags audited")


def test_a_key_policy_denying_the_rotation_status_leaves_the_key_page_readable(server: KMSServer) -> None:
    key_id = _key_denying(server, "kms:GetKeyRotationStatus")
    console = ConsoleHttp.signed_in(server.endpoint, *credentials(server, "admin"))
    page = console.get(f"/console/p/{PROJECT}/keys/{key_id}")
    assert page.status_code == 200, page.text[:500]
    assert key_id in page.text and "h4-tag-value" in page.text  # the rest of the page is there
    assert "Automatic rotation" not in page.text  # the section it may not read is left out


def test_an_unrestricted_key_page_still_shows_aliases_tags_and_rotation(server: KMSServer) -> None:
    key_id = _key_denying(server, "kms:Encrypt")  # a policy that denies nothing the page reads
    console = ConsoleHttp.signed_in(server.endpoint, *credentials(server, "admin"))
    page = console.get(f"/console/p/{PROJECT}/keys/{key_id}")
    assert page.status_code == 200, page.text[:500]
    assert f"h4-name-{key_id[:8]}" in page.text
    assert "h4-tag-key" in page.text and "h4-tag-value" in page.text
    assert "Automatic rotation" in page.text
