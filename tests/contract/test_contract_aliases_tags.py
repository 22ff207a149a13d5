"""Aliases, tags and finding keys by tag (how the operator makes creation idempotent)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from kubekms.backend import Backend
from kubekms.errors import AlreadyExists, InvalidArgument, NotFound, PendingDeletion


async def test_aliases(backend: Backend, alias: Callable[[str], str]) -> None:
    key, other = await backend.create_key(alias("primary")), await backend.create_key(alias("other"))
    extra = alias("extra")
    await backend.create_alias(key.key_id, extra)
    assert (await backend.describe_key(extra)).key_id == key.key_id
    assert sorted(await backend.list_aliases(key.key_id)) == sorted([key.alias, extra])
    assert extra in (await backend.describe_key(key.key_id)).aliases
    with pytest.raises(AlreadyExists):
        await backend.create_alias(other.key_id, extra)
    with pytest.raises(InvalidArgument):
        await backend.create_alias(key.key_id, "not valid!")
    with pytest.raises(InvalidArgument):
        await backend.delete_alias(key.key_id, key.alias)
    await backend.delete_alias(key.key_id, extra)
    with pytest.raises(NotFound):
        await backend.describe_key(extra)
    with pytest.raises(NotFound):
        await backend.delete_alias(key.key_id, extra)
    assert await backend.list_aliases(key.key_id) == [key.alias]


async def test_tags(backend: Backend, alias: Callable[[str], str]) -> None:
    key = await backend.create_key(alias("tags"))
    assert await backend.list_tags(key.key_id) == {}
    await backend.tag_key(key.key_id, {"a": "1", "b": "2"})
    await backend.tag_key(key.alias, {"a": "3"})
    assert await backend.list_tags(key.key_id) == {"a": "3", "b": "2"}
    await backend.untag_key(key.key_id, ["b"])
    assert await backend.list_tags(key.alias) == {"a": "3"}
    assert dict((await backend.describe_key(key.key_id)).tags) == {"a": "3"}


async def test_find_keys_by_tag(backend: Backend, alias: Callable[[str], str]) -> None:
    owner = "uid-" + alias("owner")
    mine = await backend.create_key(alias("mine"), tags={"kubekms.io/uid": owner})
    await backend.create_key(alias("theirs"), tags={"kubekms.io/uid": "someone-else"})
    await backend.create_key(alias("untagged"))
    found = await backend.find_keys_by_tag("kubekms.io/uid", owner)
    assert [meta.key_id for meta in found] == [mine.key_id]
    assert dict(found[0].tags) == {"kubekms.io/uid": owner}
    assert await backend.find_keys_by_tag("kubekms.io/uid", "nobody") == []
    assert await backend.find_keys_by_tag("missing-tag", owner) == []


async def test_pending_keys_refuse_new_tags_and_aliases(backend: Backend, alias: Callable[[str], str]) -> None:
    key = await backend.create_key(alias("frozen"))
    await backend.schedule_key_deletion(key.key_id, 7)
    with pytest.raises(PendingDeletion):
        await backend.tag_key(key.key_id, {"a": "1"})
    with pytest.raises(PendingDeletion):
        await backend.create_alias(key.key_id, alias("late"))
