"""The keystore engine: root of trust, state machine, versions, scheduler, quotas, processes."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from kubekms.backend import GrantTerms, KeyState
from kubekms.errors import (
    AlreadyExists,
    Disabled,
    InvalidArgument,
    InvalidCiphertext,
    InvalidState,
    LimitExceeded,
    NotFound,
    PendingDeletion,
    Reason,
)
from kubekms.keystore import Keystore, KeystoreSetupError, request_scope, rules
from kubekms.keystore.request_scope import one_look_per_request
from kubekms.keystore.schema import SCHEMA_VERSION

DAY = 86400.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def database_url() -> str | None:
    """SQLite here; tests/keystore_pg runs the same scenarios with a PostgreSQL database's URL."""
    return None


@pytest.fixture
def store(tmp_path: Path, clock: Clock, database_url: str | None) -> Keystore:
    keystore = Keystore(tmp_path / "ks", init=True, cmk_limit=5, clock=clock, database_url=database_url)
    yield keystore
    keystore.close()


# --- root of trust ----------------------------------------------------------------------


def test_refuses_to_start_without_root_key_unless_init(tmp_path: Path) -> None:
    with pytest.raises(KeystoreSetupError, match="--init"):
        Keystore(tmp_path / "fresh")
    Keystore(tmp_path / "fresh", init=True).close()
    assert oct((tmp_path / "fresh" / "root.key").stat().st_mode & 0o777) == "0o600"
    assert oct((tmp_path / "fresh" / "keystore.db").stat().st_mode & 0o777) == "0o600"
    Keystore(tmp_path / "fresh").close()  # second start needs no --init


def test_refuses_a_root_key_readable_by_others(tmp_path: Path) -> None:
    Keystore(tmp_path / "ks", init=True).close()
    os.chmod(tmp_path / "ks" / "root.key", 0o644)
    with pytest.raises(KeystoreSetupError, match="0644"):
        Keystore(tmp_path / "ks")


def test_refuses_a_foreign_root_key(tmp_path: Path) -> None:
    Keystore(tmp_path / "ks", init=True).close()
    (tmp_path / "ks" / "root.key").write_bytes(os.urandom(32))
    with pytest.raises(KeystoreSetupError, match="root key"):
        Keystore(tmp_path / "ks")


def test_material_at_rest_is_sealed(store: Keystore, tmp_path: Path) -> None:
    key = store.create_key("sealed")
    data_key = store.create_data_key(key.key_id)
    database = sqlite3.connect(tmp_path / "ks" / "keystore.db")
    (sealed,) = database.execute("SELECT sealed FROM key_versions WHERE key_id = ?", (key.key_id,)).fetchone()
    database.close()
    assert len(sealed) == 12 + 32 + 16  # nonce + material + tag: sealed, not raw
    assert data_key.plaintext not in (tmp_path / "ks" / "keystore.db").read_bytes()


def test_schema_is_versioned(tmp_path: Path) -> None:
    Keystore(tmp_path / "ks", init=True).close()
    database = sqlite3.connect(tmp_path / "ks" / "keystore.db")
    assert database.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert database.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    database.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    database.commit()
    database.close()
    with pytest.raises(RuntimeError, match="newer"):
        Keystore(tmp_path / "ks")


# --- state machine ----------------------------------------------------------------------


def test_every_transition_allowed_and_refused(store: Keystore, clock: Clock) -> None:
    key = store.create_key("states")
    assert key.state is KeyState.ENABLED
    with pytest.raises(InvalidState) as refused:
        store.enable_key(key.key_id)
    assert refused.value.reason is Reason.KEY_NOT_DISABLED
    assert store.disable_key(key.key_id).state is KeyState.DISABLED
    with pytest.raises(InvalidState) as refused:
        store.disable_key(key.key_id)
    assert refused.value.reason is Reason.KEY_NOT_ENABLED
    with pytest.raises(InvalidState) as refused:
        store.cancel_key_deletion(key.key_id)
    assert refused.value.reason is Reason.NOT_PENDING_DELETION
    assert store.enable_key(key.key_id).state is KeyState.ENABLED

    pending = store.schedule_key_deletion(key.key_id, 7)
    assert pending.state is KeyState.PENDING_DELETION
    assert pending.deletion_date is not None
    assert pending.deletion_date.timestamp() == pytest.approx(clock.now + 7 * DAY)
    with pytest.raises(InvalidState) as refused:
        store.schedule_key_deletion(key.key_id, 7)
    assert refused.value.reason is Reason.ALREADY_PENDING_DELETION
    for operation in (store.enable_key, store.disable_key, store.rotate_key):
        with pytest.raises(PendingDeletion):
            operation(key.key_id)
    with pytest.raises(PendingDeletion):
        store.create_data_key(key.key_id)

    cancelled = store.cancel_key_deletion(key.key_id)
    assert cancelled.state is KeyState.DISABLED  # as on AWS and Huawei KMS
    assert cancelled.deletion_date is None


@pytest.mark.parametrize("days", [0, 6, 1097, -1])
def test_pending_window_out_of_range(store: Keystore, days: int) -> None:
    key = store.create_key("window")
    with pytest.raises(InvalidArgument) as refused:
        store.schedule_key_deletion(key.key_id, days)
    assert refused.value.reason is Reason.PENDING_DAYS_INVALID
    assert store.describe_key(key.key_id).state is KeyState.ENABLED


def test_disabled_key_refuses_crypto_and_comes_back(store: Keystore) -> None:
    key = store.create_key("crypto")
    data_key = store.create_data_key(key.key_id, aad=b"ctx")
    store.disable_key(key.key_id)
    with pytest.raises(Disabled):
        store.create_data_key(key.key_id)
    with pytest.raises(Disabled):
        store.decrypt_data_key(key.key_id, data_key.ciphertext, aad=b"ctx")
    store.enable_key(key.key_id)
    assert store.decrypt_data_key(key.key_id, data_key.ciphertext, aad=b"ctx") == data_key.plaintext


def test_destruction_only_after_the_pending_window(store: Keystore, clock: Clock) -> None:
    key = store.create_key("doomed")
    data_key = store.create_data_key(key.key_id)
    store.schedule_key_deletion(key.key_id, 7)
    clock.now += 7 * DAY - 1
    assert store.run_due_work().destroyed == ()
    store.cancel_key_deletion(key.key_id)
    store.enable_key(key.key_id)
    assert store.decrypt_data_key(key.key_id, data_key.ciphertext) == data_key.plaintext

    store.schedule_key_deletion(key.key_id, 7)
    clock.now += 7 * DAY
    assert store.run_due_work().destroyed == (key.key_id,)
    assert store.describe_key(key.key_id).state is KeyState.DESTROYED
    with pytest.raises(NotFound, match="destroyed"):
        store.decrypt_data_key(key.key_id, data_key.ciphertext)
    with pytest.raises(NotFound):
        store.describe_key("doomed")  # the alias is released
    assert store.create_key("doomed").key_id != key.key_id


# --- versions and rotation --------------------------------------------------------------


def test_rotation_adds_versions_and_old_ones_keep_decrypting(store: Keystore) -> None:
    key = store.create_key("rotating")
    old = store.create_data_key("rotating", length=16)
    rotated = store.rotate_key(key.key_id)
    assert rotated.current_version == 2
    new = store.create_data_key("rotating")
    assert (old.key_version, new.key_version) == (1, 2)
    assert store.decrypt_data_key(key.key_id, old.ciphertext) == old.plaintext
    assert store.decrypt_data_key(key.key_id, new.ciphertext) == new.plaintext
    status = store.get_rotation_status(key.key_id)
    assert status.number_of_rotations == 1
    assert status.last_rotation_at is not None


def test_only_on_demand_rotations_count_against_their_quota(store: Keystore, clock: Clock) -> None:
    key = store.create_key("quota")
    store.set_rotation(key.key_id, enabled=True, interval_days=1)
    for _ in range(3):  # automatic rotations: not counted
        clock.now += DAY
        assert store.run_due_work().rotated == (key.key_id,)
    for _ in range(rules.ON_DEMAND_ROTATIONS):
        store.rotate_key(key.key_id)
    with pytest.raises(LimitExceeded, match="on-demand rotations"):
        store.rotate_key(key.key_id)
    assert store.describe_key(key.key_id).current_version == 4 + rules.ON_DEMAND_ROTATIONS  # nothing written
    clock.now += DAY
    assert store.run_due_work().rotated == (key.key_id,)  # automatic rotation goes on past the quota
    assert store.get_rotation_status(key.key_id).number_of_rotations == 4 + rules.ON_DEMAND_ROTATIONS


def test_automatic_rotation_happens_when_the_interval_elapsed(store: Keystore, clock: Clock) -> None:
    key = store.create_key("scheduled")
    status = store.set_rotation(key.key_id, enabled=True, interval_days=30)
    assert status.next_rotation_at is not None
    assert status.next_rotation_at.timestamp() == pytest.approx(clock.now + 30 * DAY)
    clock.now += 30 * DAY - 1
    assert store.run_due_work().rotated == ()
    clock.now += 1
    assert store.run_due_work().rotated == (key.key_id,)
    assert store.describe_key(key.key_id).current_version == 2
    assert store.run_due_work().rotated == ()  # the next one is 30 days later
    store.set_rotation(key.key_id, enabled=False)
    clock.now += 365 * DAY
    assert store.run_due_work().rotated == ()


def test_ciphertext_of_another_key_or_version_is_refused(store: Keystore) -> None:
    first, second = store.create_key("first"), store.create_key("second")
    data_key = store.create_data_key(first.key_id)
    with pytest.raises(InvalidCiphertext, match="not made under key"):
        store.decrypt_data_key(second.key_id, data_key.ciphertext)
    forged = bytearray(data_key.ciphertext)
    version_at = 4 + len(first.key_id)
    forged[version_at : version_at + 4] = (9).to_bytes(4, "big")
    with pytest.raises(InvalidCiphertext, match="version 9"):
        store.decrypt_data_key(first.key_id, bytes(forged))
    with pytest.raises(InvalidCiphertext):
        store.decrypt_data_key(first.key_id, data_key.ciphertext, aad=b"unexpected")


# --- names, tags, limits ----------------------------------------------------------------


@pytest.mark.parametrize("alias", ["has space", "x/default", "a" * 256, "0f8fad5b-d9cb-469f-a165-70867728950e"])
def test_invalid_aliases(store: Keystore, alias: str) -> None:
    with pytest.raises(InvalidArgument) as refused:
        store.create_key(alias)
    assert refused.value.reason is Reason.ALIAS_INVALID
    assert store.instance_count() == 0


def test_aliases_are_unique_and_resolve(store: Keystore) -> None:
    key = store.create_key("primary")
    store.create_alias(key.key_id, "secondary")
    assert store.describe_key("secondary").key_id == key.key_id
    assert store.list_aliases(key.key_id) == ["primary", "secondary"]
    with pytest.raises(AlreadyExists) as refused:
        store.create_key("secondary")
    assert refused.value.reason is Reason.ALREADY_EXISTS
    with pytest.raises(InvalidArgument, match="primary alias"):
        store.delete_alias(key.key_id, "primary")
    store.delete_alias(key.key_id, "secondary")
    with pytest.raises(NotFound):
        store.describe_key("secondary")


def test_tags_and_lookup_by_tag(store: Keystore) -> None:
    key = store.create_key("tagged", tags={"kubekms.io/owner-uid": "uid-1"})
    store.create_key("other", tags={"kubekms.io/owner-uid": "uid-2"})
    assert [k.key_id for k in store.find_keys_by_tag("kubekms.io/owner-uid", "uid-1")] == [key.key_id]
    store.tag_key(key.key_id, {"team": "platform", "kubekms.io/owner-uid": "uid-1"})
    assert store.list_tags(key.key_id) == {"kubekms.io/owner-uid": "uid-1", "team": "platform"}
    store.untag_key(key.key_id, ["team"])
    assert store.list_tags(key.key_id) == {"kubekms.io/owner-uid": "uid-1"}
    with pytest.raises(InvalidArgument) as refused:
        store.tag_key(key.key_id, {f"t{i}": "v" for i in range(50)})
    assert refused.value.reason is Reason.TAG_COUNT_EXCEEDED
    assert len(store.list_tags(key.key_id)) == 1  # nothing partially written


def test_cmk_limit_and_quota(store: Keystore) -> None:
    for index in range(5):
        store.create_key(f"key-{index}")
    with pytest.raises(LimitExceeded) as refused:
        store.create_key("one-too-many")
    assert refused.value.reason is Reason.LIMIT_EXCEEDED
    [quota] = store.quotas()
    assert (quota.resource, quota.used, quota.limit) == ("CMK", 5, 5)


def test_paging_with_markers_and_state_filter(store: Keystore) -> None:
    created = [store.create_key(f"page-{index}").key_id for index in range(5)]
    store.disable_key(created[1])
    first = store.list_keys(limit=2)
    assert (first.total, first.next_marker) == (5, "2")
    second = store.list_keys(limit=2, marker=first.next_marker)
    third = store.list_keys(limit=2, marker=second.next_marker)
    assert third.next_marker is None
    assert [k.key_id for k in [*first.keys, *second.keys, *third.keys]] == created
    disabled = store.list_keys(state=KeyState.DISABLED)
    assert [k.key_id for k in disabled.keys] == [created[1]]
    with pytest.raises(InvalidArgument) as refused:
        store.list_keys(limit=0)
    assert refused.value.reason is Reason.LIST_LIMIT_INVALID
    with pytest.raises(InvalidArgument) as refused:
        store.list_keys(marker="-1")
    assert refused.value.reason is Reason.MARKER_INVALID


def test_key_spec_filter_applies_before_paging(store: Keystore) -> None:
    symmetric = [store.create_key(f"aes-{index}").key_id for index in range(2)]
    rsa = store.create_key("rsa", key_spec="RSA_2048", key_usage="SIGN_VERIFY").key_id
    first = store.list_keys(limit=1, key_spec="AES_256")
    rest = store.list_keys(limit=1, key_spec="AES_256", marker=first.next_marker)
    assert (first.total, first.next_marker, rest.next_marker) == (2, "1", None)
    assert [k.key_id for k in [*first.keys, *rest.keys]] == symmetric
    only = store.list_keys(key_spec="RSA_2048", state=KeyState.ENABLED)
    assert ([k.key_id for k in only.keys], only.total) == ([rsa], 1)


@pytest.mark.parametrize("length", [0, 1025])
def test_data_key_and_random_lengths(store: Keystore, length: int) -> None:
    key = store.create_key("lengths")
    with pytest.raises(InvalidArgument):
        store.create_data_key(key.key_id, length=length)
    with pytest.raises(InvalidArgument):
        store.generate_random(length)
    assert len(store.generate_random(1024)) == 1024
    assert len(store.create_data_key(key.key_id, length=64).plaintext or b"") == 64


# --- several processes on one directory -------------------------------------------------

_OTHER_PROCESS = """
import sys
from pathlib import Path
from kubekms.keystore import Keystore
store = Keystore(Path(sys.argv[1]), database_url=sys.argv[2] or None)
command, argument = sys.argv[3], sys.argv[4]
if command == "create":
    print(store.create_key(argument).key_id)
elif command == "disable":
    store.disable_key(argument)
elif command == "decrypt":
    print(store.decrypt_data_key(argument, bytes.fromhex(sys.argv[5])).hex())
elif command == "alias":
    store.create_alias(argument, sys.argv[5])
"""


def _other_process(directory: Path, database_url: str | None, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", _OTHER_PROCESS, str(directory), database_url or "", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_two_processes_see_each_others_writes(store: Keystore, tmp_path: Path, database_url: str | None) -> None:
    directory, url = tmp_path / "ks", database_url
    mine = store.create_key("mine")
    data_key = store.create_data_key(mine.key_id)  # warms this process's cache
    theirs = _other_process(directory, url, "create", "theirs")
    assert store.describe_key("theirs").key_id == theirs
    assert _other_process(directory, url, "decrypt", mine.key_id, data_key.ciphertext.hex()) == data_key.plaintext.hex()
    _other_process(directory, url, "disable", mine.key_id)
    with pytest.raises(Disabled):  # the cached enabled state was dropped
        store.create_data_key(mine.key_id)


def test_a_request_looks_for_other_processes_commits_once_and_writes_always(
    store: Keystore, tmp_path: Path, database_url: str | None
) -> None:
    """Inside one server request the keystore looks once (its first call); the next request sees every commit."""
    directory, url = tmp_path / "ks", database_url
    key = store.create_key("scoped")
    with one_look_per_request():
        store.create_data_key(key.key_id)  # the request's look; the key is cached
        _other_process(directory, url, "disable", key.key_id)
        store.create_data_key(key.key_id)  # same request: what its first call saw
        with pytest.raises(Disabled):  # a write reads the rows as they are now, request or not
            store.rotate_key(key.key_id)
    with one_look_per_request(), pytest.raises(Disabled):  # the next request: at once
        store.create_data_key(key.key_id)
    assert store.describe_key(key.key_id).state is KeyState.DISABLED  # outside a request: every call looks


def test_key_names_follow_alias_changes_of_this_and_other_processes(
    store: Keystore, tmp_path: Path, database_url: str | None
) -> None:
    """What a principal's key list may name a key by, cached between calls like the key's row."""
    key = store.create_key("named")
    assert set(store.key_names("named")) == {key.key_id, "named"}
    store.create_alias(key.key_id, "second")
    assert set(store.key_names(key.key_id)) == {key.key_id, "named", "second"}
    _other_process(tmp_path / "ks", database_url, "alias", key.key_id, "third")
    assert set(store.key_names(key.key_id)) == {key.key_id, "named", "second", "third"}
    store.delete_alias(key.key_id, "second")
    assert set(store.key_names("third")) == {key.key_id, "named", "third"}
    with pytest.raises(NotFound):
        store.key_names("second")


def test_the_request_scope_ends_with_its_request(store: Keystore) -> None:
    with one_look_per_request():
        assert not request_scope.looked(store)
        store.instance_count()
        assert request_scope.looked(store)
    assert not request_scope.looked(store)
    request_scope.mark_looked(store)  # outside a request there is nothing to mark
    assert not request_scope.looked(store)


def test_a_key_may_be_created_without_alias(store: Keystore) -> None:
    """The AWS wire creates keys without a name; they are found by id only."""
    key = store.create_key("")
    assert (key.alias, key.aliases) == ("", ())
    assert store.describe_key(key.key_id).key_id == key.key_id


def test_an_old_version_can_be_disabled_and_enabled_again(store: Keystore) -> None:
    key = store.create_key("versions")
    old = store.create_data_key(key.key_id)
    with pytest.raises(InvalidState, match="current version"):
        store.set_version_enabled(key.key_id, 1, enabled=False)
    store.rotate_key(key.key_id)
    new = store.create_data_key(key.key_id)
    store.set_version_enabled(key.key_id, 1, enabled=False)
    with pytest.raises(Disabled, match="version 1"):
        store.decrypt_data_key(key.key_id, old.ciphertext)
    assert store.decrypt_data_key(key.key_id, new.ciphertext) == new.plaintext
    store.set_version_enabled(key.key_id, 1, enabled=True)
    assert store.decrypt_data_key(key.key_id, old.ciphertext) == old.plaintext
    with pytest.raises(InvalidArgument):
        store.set_version_enabled(key.key_id, 3, enabled=True)


def test_a_version_1_database_is_migrated(tmp_path: Path) -> None:
    from kubekms.keystore.schema import MIGRATIONS

    directory = tmp_path / "ks"
    Keystore(directory, init=True).close()
    database = sqlite3.connect(directory / "keystore.db")
    database.execute("ALTER TABLE key_versions DROP COLUMN enabled")
    database.execute("DROP TABLE key_policies")  # version 3
    database.execute("DROP TABLE grants")  # version 4
    database.execute("DROP TABLE import_tokens")  # version 5
    database.execute("ALTER TABLE keys DROP COLUMN material_expires_at")
    database.execute("ALTER TABLE keys DROP COLUMN material_digest")
    database.execute("ALTER TABLE keys DROP COLUMN region")  # version 6
    database.execute("ALTER TABLE key_versions DROP COLUMN on_demand")  # version 7
    database.execute("PRAGMA user_version = 1")
    database.commit()
    database.close()
    store = Keystore(directory)
    key = store.create_key("after-migration")
    assert store.create_data_key(key.key_id).key_version == 1
    store.close()
    database = sqlite3.connect(directory / "keystore.db")
    assert database.execute("PRAGMA user_version").fetchone() == (len(MIGRATIONS),)
    database.close()


def test_rotations_made_before_version_7_count_as_automatic(tmp_path: Path) -> None:
    directory = tmp_path / "ks"
    store = Keystore(directory, init=True)
    key_id = store.create_key("rotated-before").key_id
    store.rotate_key(key_id)
    store.close()
    database = sqlite3.connect(directory / "keystore.db")
    database.execute("ALTER TABLE key_versions DROP COLUMN on_demand")
    database.execute("PRAGMA user_version = 6")
    database.commit()
    database.close()
    store = Keystore(directory)
    assert store.describe_key(key_id).current_version == 2
    store.rotate_key(key_id)
    store.close()
    database = sqlite3.connect(directory / "keystore.db")
    rows = database.execute("SELECT version, on_demand FROM key_versions ORDER BY version").fetchall()
    assert rows == [(1, 0), (2, 0), (3, 1)]
    database.close()


def test_a_keys_region_is_stored_and_lists_filter_by_it(store: Keystore) -> None:
    east, west = store.create_key("", region="us-east-1"), store.create_key("", region="us-west-2")
    anywhere = store.create_key("no-region")  # the v1.0 wire's keys: no region
    assert store.describe_key(east.key_id).region == "us-east-1" and anywhere.region == ""
    in_east = {key.key_id for key in store.list_keys(region="us-east-1").keys}
    assert {east.key_id, anywhere.key_id} <= in_east and west.key_id not in in_east
    assert {east.key_id, west.key_id, anywhere.key_id} <= {key.key_id for key in store.list_keys().keys}


def test_key_policies_grants_and_alias_moves_are_stored(store: Keystore) -> None:
    key, other = store.create_key("policy-key"), store.create_key("other-key")
    assert store.get_key_policy(key.key_id) is None  # the default policy applies
    store.put_key_policy("policy-key", '{"first": 1}')
    store.put_key_policy(key.key_id, '{"second": 2}')
    assert store.get_key_policy("policy-key") == '{"second": 2}'
    with pytest.raises(InvalidArgument):
        store.put_key_policy(key.key_id, "x" * 32769)

    terms = GrantTerms(
        "arn:aws:iam::p:user/app", ("Encrypt",), retiring="arn:aws:iam::p:user/ops", context_subset={"t": "1"}
    )
    grant = store.create_grant("policy-key", terms)
    assert store.list_grants(key.key_id) == [grant] and store.list_grants(other.key_id) == []
    assert store.list_grants(retiring="arn:aws:iam::p:user/ops") == [grant] and store.list_grants(retiring="x") == []
    assert store.find_grant(token=grant.token) == grant == store.find_grant(key_ref=key.key_id, grant_id=grant.grant_id)
    store.delete_grant(key.key_id, grant.grant_id)
    with pytest.raises(NotFound):
        store.find_grant(token=grant.token)
    with pytest.raises(NotFound):
        store.delete_grant(key.key_id, grant.grant_id)

    store.create_alias(key.key_id, "moving")
    store.update_alias("moving", other.key_id)
    assert store.describe_key("moving").key_id == other.key_id
    with pytest.raises(InvalidArgument):
        store.update_alias("policy-key", other.key_id)  # a primary alias stays with its key
    with pytest.raises(NotFound):
        store.update_alias("absent", other.key_id)
