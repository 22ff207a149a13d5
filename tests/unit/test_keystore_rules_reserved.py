"""The keystore's reserved names: tag keys one may set or remove, aliases no client makes."""

from __future__ import annotations

import pytest

from kubekms.errors import InvalidArgument, Reason
from kubekms.keystore import rules


@pytest.mark.parametrize("tag_key", ["owner\x1b[2J", "team\tname", "del\x7f", "c1\x85"])
def test_a_tag_key_with_a_control_character_is_removable_but_not_settable(tag_key: str) -> None:
    rules.check_removable_tag_key(tag_key)
    with pytest.raises(InvalidArgument, match="control characters") as refused:
        rules.check_tag_key(tag_key)
    assert refused.value.reason is Reason.TAG_KEY_INVALID


@pytest.mark.parametrize("tag_key", ["aws:x", "AWS:createdBy", "Aws:\x1b"])
def test_an_aws_tag_key_is_neither_settable_nor_removable(tag_key: str) -> None:
    for check in (rules.check_tag_key, rules.check_removable_tag_key):
        with pytest.raises(InvalidArgument, match="reserved") as refused:
            check(tag_key)
        assert refused.value.reason is Reason.TAG_KEY_RESERVED


@pytest.mark.parametrize("tag_key", ["", "x" * 129, "\ud800"])
def test_a_tag_key_no_keystore_can_hold_is_not_removable(tag_key: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        rules.check_removable_tag_key(tag_key)
    assert refused.value.reason is Reason.TAG_KEY_INVALID


@pytest.mark.parametrize(
    ("alias", "owner"),
    [("aws/s3", "AWS managed keys"), ("aws/", "AWS managed keys"), ("gcp/global/r/k/1", "Cloud KMS API")],
)
def test_reserved_aliases_are_refused_naming_their_owner(alias: str, owner: str) -> None:
    assert rules.is_reserved_alias(alias)
    with pytest.raises(InvalidArgument, match=f"reserved for {owner}") as refused:
        rules.check_not_reserved_alias(alias)
    assert refused.value.reason is Reason.ALIAS_INVALID


@pytest.mark.parametrize("alias", ["aws", "awsx/s3", "my/aws/s3", "AWS/s3", "gcp", "prod/gcp/x"])
def test_aliases_only_near_a_reserved_prefix_are_allowed(alias: str) -> None:
    assert not rules.is_reserved_alias(alias)
    assert rules.check_not_reserved_alias(alias) == alias
