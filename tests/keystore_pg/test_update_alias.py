"""Keystore.update_key_alias (Huawei's update-key-alias) on both engines: the key's primary alias (keys.alias) and
its aliases row renamed together; another keystore on the same database (a worker process, a replica) sees the new
name at its next call although it had the old one cached; renames that race from two keystores leave one owner per
name and no name half-moved."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from race_support import fire

from kubekms.backend import KeyState
from kubekms.devenv import postgres
from kubekms.errors import AlreadyExists, InvalidArgument, LimitExceeded, NotFound, PendingDeletion
from kubekms.keystore import Keystore, rules

RACES = 8  # rounds of each race: a lost update would show within a few


@pytest.fixture(params=["sqlite", "postgres"])
def engine_url(request: pytest.FixtureRequest, pg_server: postgres.Postgres) -> str | None:
    if request.param == "sqlite":
        return None
    url: str = request.getfixturevalue("database_url")  # a fresh PostgreSQL database (conftest)
    return url


@pytest.fixture
def stores(tmp_path: Path, engine_url: str | None) -> Iterator[tuple[Keystore, Keystore]]:
    """Two keystores of one project on one database, as two worker processes or two replicas hold it."""
    first = Keystore(tmp_path / "proj", init=True, database_url=engine_url)
    second = Keystore(tmp_path / "proj", database_url=engine_url)
    yield first, second
    first.close()
    second.close()


def alias_rows(store: Keystore, key_id: str) -> list[str]:
    return list(store.describe_key(key_id).aliases)


def test_a_rename_moves_the_primary_alias_and_its_row(stores: tuple[Keystore, Keystore]) -> None:
    store, _ = stores
    key = store.create_key("before", description="d")
    store.create_alias(key.key_id, "extra")
    renamed = store.update_key_alias(key.key_id, "after")
    assert (renamed.key_id, renamed.alias, renamed.aliases) == (key.key_id, "after", ("after", "extra"))
    assert store.describe_key("after").key_id == key.key_id
    with pytest.raises(NotFound):
        store.describe_key("before")  # the old name no longer names the key
    assert store.describe_key("extra").alias == "after"
    # the new name is the primary one: it cannot be deleted nor moved away; the old one is free again
    with pytest.raises(InvalidArgument):
        store.delete_alias(key.key_id, "after")
    assert store.create_key("before").alias == "before"


def test_another_keystore_sees_the_rename_at_its_next_call(stores: tuple[Keystore, Keystore]) -> None:
    store, other = stores
    key_id = store.create_key("cached").key_id
    assert other.describe_key("cached").key_id == key_id  # the other now holds the old name in its cache
    assert other.key_names(key_id) == (key_id, "cached", "cached")
    store.update_key_alias(key_id, "renamed")
    assert other.describe_key(key_id).alias == "renamed"
    assert other.key_names(key_id) == (key_id, "renamed", "renamed")  # what a principal's key list is checked on
    with pytest.raises(NotFound):
        other.describe_key("cached")
    assert [meta.alias for meta in other.list_keys().keys] == ["renamed"]
    assert other.describe_key("renamed").key_id == key_id


def test_refusals(stores: tuple[Keystore, Keystore]) -> None:
    store, _ = stores
    key_id = store.create_key("mine").key_id
    store.create_alias(key_id, "mine-extra")
    store.create_key("taken")
    for taken in ("taken", "mine-extra"):  # another key's, or one of this key's other aliases
        with pytest.raises(AlreadyExists):
            store.update_key_alias(key_id, taken)
    for bad in ("", "has space", "x/default", "gcp/l/r/k/1", "aws/managed", "a" * 256):
        with pytest.raises(InvalidArgument):
            store.update_key_alias(key_id, bad)
    with pytest.raises(NotFound):
        store.update_key_alias("none-such", "new")
    store.schedule_key_deletion(key_id, 7)
    with pytest.raises(PendingDeletion):  # as Huawei: a key pending deletion keeps its alias
        store.update_key_alias(key_id, "new")
    assert store.describe_key(key_id).aliases == ("mine", "mine-extra")
    assert store.describe_key(key_id).state is KeyState.PENDING_DELETION


def test_a_reserved_name_is_never_taken_from_its_key(stores: tuple[Keystore, Keystore]) -> None:
    store, _ = stores
    version_key = store.create_key("gcp/loc/ring/key/1")  # as the Cloud KMS API names its versions' keys
    with pytest.raises(InvalidArgument, match="reserved"):
        store.update_key_alias(version_key.key_id, "stolen")
    assert store.describe_key("gcp/loc/ring/key/1").key_id == version_key.key_id


def test_the_same_name_again_changes_nothing(stores: tuple[Keystore, Keystore]) -> None:
    store, _ = stores
    key = store.create_key("steady")
    assert store.update_key_alias(key.key_id, "steady").aliases == ("steady",)


def test_a_key_without_a_primary_alias_gets_one_within_the_alias_limit(stores: tuple[Keystore, Keystore]) -> None:
    store, _ = stores
    key_id = store.create_key("").key_id  # as the AWS wire makes them
    assert store.update_key_alias(key_id, "named").aliases == ("named",)
    full = store.create_key("").key_id
    for number in range(rules.MAX_ALIASES_PER_KEY):
        store.create_alias(full, f"a{number}")
    with pytest.raises(LimitExceeded):
        store.update_key_alias(full, "one-too-many")
    named_full = store.create_key("primary").key_id
    for number in range(rules.MAX_ALIASES_PER_KEY - 1):
        store.create_alias(named_full, f"b{number}")
    assert store.update_key_alias(named_full, "renamed-full").alias == "renamed-full"  # a rename adds none


def test_two_keys_racing_for_one_name_leave_one_owner(stores: tuple[Keystore, Keystore]) -> None:
    first_store, second_store = stores
    for round_number in range(RACES):
        first = first_store.create_key(f"first-{round_number}").key_id
        second = second_store.create_key(f"second-{round_number}").key_id
        wanted = f"wanted-{round_number}"
        outcomes = fire([partial(first_store.update_key_alias, first, wanted),
                         partial(second_store.update_key_alias, second, wanted)])  # fmt: skip
        assert sorted(type(outcome).__name__ for outcome in outcomes) == ["AlreadyExists", "KeyMetadata"]
        winner, loser = (first, second) if isinstance(outcomes[1], AlreadyExists) else (second, first)
        for store in stores:
            assert store.describe_key(wanted).key_id == winner
            assert alias_rows(store, winner) == [wanted]
            assert store.describe_key(loser).aliases == (store.describe_key(loser).alias,)  # its old name kept
            assert store.describe_key(loser).alias != wanted


def test_one_key_renamed_twice_at_once_keeps_one_name(stores: tuple[Keystore, Keystore]) -> None:
    first_store, second_store = stores
    for round_number in range(RACES):
        key_id = first_store.create_key(f"twice-{round_number}").key_id
        names = (f"left-{round_number}", f"right-{round_number}")
        outcomes = fire([partial(first_store.update_key_alias, key_id, names[0]),
                         partial(second_store.update_key_alias, key_id, names[1])])  # fmt: skip
        assert not [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
        final = first_store.describe_key(key_id)
        assert final.alias in names and final.aliases == (final.alias,)  # no second name left on the key
        (loser,) = set(names) - {final.alias}
        with pytest.raises(NotFound):
            second_store.describe_key(loser)
        with pytest.raises(NotFound):
            second_store.describe_key(f"twice-{round_number}")
