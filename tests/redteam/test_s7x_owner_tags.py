"""``kubekms.io/`` tags decide which KMSKey owns a key, and the operator deletes what a KMSKey owns.

A principal allowed only to tag a key turned "tag" into "delete": tag the victim ``kubekms.io/owner-uid:
<uid of a KMSKey it controls>``, delete that KMSKey, and the operator schedules the victim's deletion.
Setting or removing a tag under ``kubekms.io/`` (any case) on an existing key now also needs
kms:ScheduleKeyDeletion on that key, on every wire; else AccessDenied naming the prefix, nothing written.
CreateKey's own tags are the creator's (no extra check).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from aws_refusal_support import refused

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server
from kubekms.errors import AccessDenied
from kubekms.providers import Credentials
from kubekms.wire.signing import sign_headers

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "console"))
from console_harness import ConsoleHttp, credentials

TAGGER = Principal("tagger", actions=("describe-key", "batch-key-tags", "create-key-tag", "delete-key-tag"))
# may schedule deletions too: its key policy decides
MANAGER = Principal("manager", actions=("describe-key", "batch-key-tags", "delete-key-tag", "schedule-key-deletion"))
OWNER_TAG = "kubekms.io/owner-uid"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("s7x-tags"), principals=(TAGGER, MANAGER)) as running:
        yield running


def _victim(server: KMSServer) -> tuple[Any, str]:
    admin = server.aws_client()
    key_id = admin.create_key(Tags=[{"TagKey": OWNER_TAG, "TagValue": "original"}])["KeyMetadata"]["KeyId"]
    return admin, key_id


def _tags(admin: Any, key_id: str) -> dict[str, str]:
    return {t["TagKey"]: t["TagValue"] for t in admin.list_resource_tags(KeyId=key_id)["Tags"]}


@pytest.mark.parametrize("tag_key", [OWNER_TAG, "KubeKMS.IO/owner-uid", "kubekms.io/anything"])
def test_a_tag_only_principal_cannot_set_or_remove_a_reserved_tag_on_the_aws_wire(server: KMSServer,
                                                                                   tag_key: str) -> None:  # fmt: skip
    admin, key_id = _victim(server)
    tagger = server.aws_client("tagger")
    tags = [{"TagKey": "team", "TagValue": "a"}, {"TagKey": tag_key, "TagValue": "attacker-kmskey-uid"}]
    assert refused(lambda: tagger.tag_resource(KeyId=key_id, Tags=tags)) == "AccessDeniedException"
    assert refused(lambda: tagger.untag_resource(KeyId=key_id, TagKeys=["team", OWNER_TAG])) == "AccessDeniedException"
    assert _tags(admin, key_id) == {OWNER_TAG: "original"}  # nothing written
    tagger.tag_resource(KeyId=key_id, Tags=[{"TagKey": "team", "TagValue": "a"}])  # ordinary tags stay its own
    tagger.untag_resource(KeyId=key_id, TagKeys=["team"])
    assert _tags(admin, key_id) == {OWNER_TAG: "original"}


def test_the_refusal_names_the_reserved_prefix(server: KMSServer) -> None:
    _, key_id = _victim(server)
    tagger = server.aws_client("tagger")
    with pytest.raises(Exception, match=r"kubekms\.io/") as raised:
        tagger.tag_resource(KeyId=key_id, Tags=[{"TagKey": OWNER_TAG, "TagValue": "x"}])
    assert "ScheduleKeyDeletion" in str(raised.value)


def test_a_tag_only_principal_cannot_set_or_remove_a_reserved_tag_on_the_v1_wire(server: KMSServer) -> None:
    admin, key_id = _victim(server)
    with pytest.raises(AccessDenied, match=r"kubekms\.io/"):
        server.call("tag_key", key_id, {OWNER_TAG: "attacker-kmskey-uid"}, principal="tagger")
    with pytest.raises(AccessDenied, match=r"kubekms\.io/"):
        server.call("untag_key", key_id, ["KUBEKMS.io/owner-uid", OWNER_TAG], principal="tagger")
    assert _tags(admin, key_id) == {OWNER_TAG: "original"}


def test_a_key_policy_denying_schedule_key_deletion_keeps_the_reserved_tags(server: KMSServer) -> None:
    admin, key_id = _victim(server)
    manager = server.aws_client("manager")
    manager.tag_resource(KeyId=key_id, Tags=[{"TagKey": OWNER_TAG, "TagValue": "moved"}])  # allowed both
    account = {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::default:root"}, "Action": "kms:*",
               "Resource": "*"}  # fmt: skip
    deny = {"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::default:user/manager"},
            "Action": "kms:ScheduleKeyDeletion", "Resource": "*"}  # fmt: skip
    admin.put_key_policy(KeyId=key_id, PolicyName="default",
                         Policy=json.dumps({"Version": "2012-10-17", "Statement": [account, deny]}))  # fmt: skip
    assert refused(lambda: manager.untag_resource(KeyId=key_id, TagKeys=[OWNER_TAG])) == "AccessDeniedException"
    assert _tags(admin, key_id) == {OWNER_TAG: "moved"}
    manager.tag_resource(KeyId=key_id, Tags=[{"TagKey": "team", "TagValue": "b"}])


def test_the_creator_sets_reserved_tags_and_a_principal_of_every_action_changes_them(server: KMSServer) -> None:
    admin, key_id = _victim(server)  # CreateKey's own reserved tag
    admin.tag_resource(KeyId=key_id, Tags=[{"TagKey": OWNER_TAG, "TagValue": "adopted"}])
    assert _tags(admin, key_id) == {OWNER_TAG: "adopted"}
    server.call("untag_key", key_id, [OWNER_TAG])
    assert _tags(admin, key_id) == {}


def test_a_tag_only_principal_cannot_set_or_remove_a_reserved_tag_in_the_console(server: KMSServer) -> None:
    admin, key_id = _victim(server)
    tagger = ConsoleHttp.signed_in(server.endpoint, *credentials(server, "tagger"))
    for action, fields in [("add-tag", {"tag_key": OWNER_TAG, "tag_value": "x"}),
                           ("remove-tag", {"tag_key": "Kubekms.io/owner-uid"}),
                           ("remove-tag", {"tag_key": OWNER_TAG})]:  # fmt: skip
        answer = tagger.post(f"/console/p/default/keys/{key_id}/{action}", data={"csrf": tagger.csrf(), **fields})
        assert answer.status_code == 403 and "kubekms.io/" in answer.text, (action, answer.status_code)
    assert _tags(admin, key_id) == {OWNER_TAG: "original"}
    answer = tagger.post(f"/console/p/default/keys/{key_id}/add-tag",
                         data={"csrf": tagger.csrf(), "tag_key": "team", "tag_value": "a"})  # fmt: skip
    assert answer.status_code == 303
    assert _tags(admin, key_id) == {OWNER_TAG: "original", "team": "a"}


def _signed(server: KMSServer, method: str, path: str, body: bytes = b"") -> requests.Response:
    url = server.endpoint + path
    headers = sign_headers(method, url, {"Content-Type": "application/json"}, body,
                           Credentials.from_file(server.credentials_file("tagger")))  # fmt: skip
    return requests.request(method, url, data=body, headers=headers, timeout=10)


def test_the_v1_single_tag_calls_refuse_a_reserved_tag_too(server: KMSServer) -> None:
    admin, key_id = _victim(server)
    created = _signed(server, "POST", f"/v1.0/default/kms/{key_id}/tags",
                      json.dumps({"tag": {"key": OWNER_TAG, "value": "x"}}).encode())  # fmt: skip
    assert created.status_code == 403 and "kubekms.io/" in created.text, (created.status_code, created.text)
    # DELETE .../tags/{key} names a key holding "/" as %2F: refused like the other tag calls
    deleted = _signed(server, "DELETE", f"/v1.0/default/kms/{key_id}/tags/{quote(OWNER_TAG, safe='')}")
    assert deleted.status_code == 403 and "kubekms.io/" in deleted.text, (deleted.status_code, deleted.text)
    assert _tags(admin, key_id) == {OWNER_TAG: "original"}
