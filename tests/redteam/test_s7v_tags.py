"""Adversarial review of the tag rules (38773ca), read as an upgrade.

Before 38773ca, the AWS wire (TagResource, CreateKey's Tags) and the console took tag keys holding
control characters (only lone surrogates were refused): such tags exist in keystores made before it.
The same commit made removal check the setting rule (rules.check_tag_key on untag_key), so those tags can
no longer be removed by anyone, on any wire: a key keeps a tag like ``owner\\x1b[2J`` for ever.
Removal must take any tag the key holds (AWS's reserved ``aws:`` prefix aside).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubekms.errors import InvalidArgument
from kubekms.keystore import Keystore

LEGACY_TAG_KEYS = ("owner\x1b[2J", "team\tname", "del\x7f", "c1\x85")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Keystore]:
    keystore = Keystore(tmp_path / "ks", init=True)
    yield keystore
    keystore.close()


def test_a_tag_set_before_the_control_character_rule_can_still_be_removed(store: Keystore, tmp_path: Path) -> None:
    key_id = store.create_key("legacy", description="tagged by an older server").key_id
    with sqlite3.connect(tmp_path / "ks" / "keystore.db") as db:  # what an older server's TagResource stored
        db.executemany(
            "INSERT INTO tags (key_id, tag_key, tag_value) VALUES (?, ?, ?)",
            [(key_id, tag_key, "x") for tag_key in LEGACY_TAG_KEYS],
        )
    store.close()
    reopened = Keystore(tmp_path / "ks")
    try:
        assert set(reopened.list_tags(key_id)) == set(LEGACY_TAG_KEYS)
        with pytest.raises(InvalidArgument):  # setting one again stays refused
            reopened.tag_key(key_id, {LEGACY_TAG_KEYS[0]: "y"})
        reopened.untag_key(key_id, list(LEGACY_TAG_KEYS))
        assert reopened.list_tags(key_id) == {}
    finally:
        reopened.close()
