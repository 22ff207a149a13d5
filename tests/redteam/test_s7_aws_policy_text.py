"""A key policy's text holds only what AWS's model allows: tab, newline, carriage return, U+0020-U+00FF.

botocore's PolicyType pattern is ``[\\u0009\\u000A\\u000D\\u0020-\\u00FF]+``; AWS answers any other
character (a control character, Cyrillic, an emoji written raw) with ValidationException, on
PutKeyPolicy and CreateKey. The same characters written as JSON escapes (``\\u0416``) are ASCII and
accepted. Nothing is stored when refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from kubekms.devenv.kmsserver import kms_server


@pytest.fixture(scope="module")
def kms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with kms_server(tmp_path_factory.mktemp("kms"), project_id="default") as running:
        yield running.aws_client()


def policy(sid: str, *, ascii_only: bool) -> str:
    statement = {"Sid": sid, "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::default:root"}, "Action": "kms:*",
                 "Resource": "*"}  # fmt: skip
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]}, ensure_ascii=ascii_only)


@pytest.mark.parametrize("sid", ["Жук", "key\U0001f511", "\u0133"])
def test_characters_outside_the_policy_pattern_are_refused(kms: Any, sid: str) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    before = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
    keys_before = len(kms.list_keys()["Keys"])
    for call in (lambda: kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=policy(sid, ascii_only=False)),
                 lambda: kms.create_key(Policy=policy(sid, ascii_only=False))):  # fmt: skip
        with pytest.raises(kms.exceptions.ClientError) as raised:
            call()
        assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"] == before
    assert len(kms.list_keys()["Keys"]) == keys_before
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=policy(sid, ascii_only=True))  # escaped: ASCII
    assert json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])["Statement"][0]["Sid"] == sid


def test_latin_1_and_whitespace_are_kept(kms: Any) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    document = policy("clé été", ascii_only=False).replace(", ", ",\n\t", 1) + "\r\n"
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=document)
    assert kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"] == document


def test_a_raw_control_character_is_a_validation_error(kms: Any) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    document = policy("plain", ascii_only=True).replace(", ", ",\x0c", 1)  # form feed: not in the pattern
    with pytest.raises(kms.exceptions.ClientError) as raised:
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=document)
    assert raised.value.response["Error"]["Code"] == "ValidationException"
