"""boto3 against the AWS wire: tags AWS refuses are refused with TagException, and nothing is written.

AWS allows letters, digits, spaces and ``_ . : / = + - @`` in tags; control characters (Unicode Cc:
ASCII 0-31, DEL, 128-159) never, in keys or values: they are refused on every wire (the keystore's
rule; the v1.0 wire answers KMS.0406 / KMS.0405). UntagResource cannot name an ``aws:`` key either.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aws_refusal_support import refused

from kubekms.devenv.kmsserver import kms_server


@pytest.fixture(scope="module")
def kms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with kms_server(tmp_path_factory.mktemp("kms"), project_id="default") as running:
        yield running.aws_client()


HOSTILE = [("a\x00b", "v"), ("esc\x1b", "v"), ("k", "\x1b]0;title\x07"), ("k", "line\nbreak"), ("del\x7f", "v"),
           ("k", "csi\x9b2J"), ("k", "tab\t")]  # fmt: skip


@pytest.mark.parametrize(("tag_key", "tag_value"), HOSTILE)
def test_control_characters_in_tags_are_a_tag_exception(kms: Any, tag_key: str, tag_value: str) -> None:
    key_id = kms.create_key(Tags=[{"TagKey": "kept", "TagValue": "yes"}])["KeyMetadata"]["KeyId"]
    keys_before = len(kms.list_keys()["Keys"])
    hostile = [{"TagKey": "fine", "TagValue": "v"}, {"TagKey": tag_key, "TagValue": tag_value}]
    assert refused(lambda: kms.tag_resource(KeyId=key_id, Tags=hostile)) == "TagException"
    assert refused(lambda: kms.create_key(Tags=hostile)) == "TagException"
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "kept", "TagValue": "yes"}]
    assert len(kms.list_keys()["Keys"]) == keys_before


def test_printable_unicode_tags_are_kept(kms: Any) -> None:
    wanted = [{"TagKey": "équipe été", "TagValue": "a b c"}, {"TagKey": "n/s:x=y+z-@.", "TagValue": ""}]
    key_id = kms.create_key(Tags=wanted)["KeyMetadata"]["KeyId"]
    assert sorted(kms.list_resource_tags(KeyId=key_id)["Tags"], key=lambda t: t["TagKey"]) == sorted(
        wanted, key=lambda t: t["TagKey"]
    )


@pytest.mark.parametrize("tag_key", ["aws:x", "AWS:createdBy"])
def test_untag_of_an_aws_key_is_a_tag_exception(kms: Any, tag_key: str) -> None:
    key_id = kms.create_key(Tags=[{"TagKey": "kept", "TagValue": "yes"}])["KeyMetadata"]["KeyId"]
    assert refused(lambda: kms.untag_resource(KeyId=key_id, TagKeys=["kept", tag_key])) == "TagException"
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "kept", "TagValue": "yes"}]
