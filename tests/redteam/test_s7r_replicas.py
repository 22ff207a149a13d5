"""Races across processes: requests fired together at two replicas on one PostgreSQL database, and at
the two worker processes of one server on SQLite (the kernel spreads new connections over them).

Every check here is one a single request cannot make: a quota, a uniqueness rule or an idempotency
that holds for requests one after another must hold for requests that overlap on two processes;
a change acknowledged by one replica must be honoured by another on its next request; and data keys
made while the key rotates elsewhere must all decrypt.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "keystore_pg"))
from race_support import aws_error, fire, fresh_database, workers
from replicas_support import PROJECT, replicas

from kubekms.devenv import postgres
from kubekms.devenv.kmsserver import KMSServer, Principal
from kubekms.errors import AlreadyExists
from kubekms.providers import open_backend

ROUNDS = 3  # races per uniqueness check: one overlap could come out right by luck
ACCOUNT = "default"  # the AWS wire's account of the admin principal (its projects are "*")
PROJECTS = (PROJECT, ACCOUNT)  # every replica holds the root key of both, as the chart's Secret gives it


@pytest.fixture(scope="module")
def pg() -> Iterator[postgres.Postgres]:
    with postgres.postgres() as server:
        yield server


KINDS = ("replicas", "workers")


@contextmanager
def two_processes(
    kind: str, pg: postgres.Postgres, base: Path, *, cmk_limit: int = 1000, principals: tuple[Principal, ...] = ()
) -> Iterator[list[KMSServer]]:
    """Two replicas on one fresh database, or a server of two workers (listed twice: the kernel picks)."""
    if kind == "workers":
        with workers(base, cmk_limit=cmk_limit, principals=principals) as server:
            yield [server, server]
        return
    with (
        fresh_database(pg) as url,
        replicas(base, url, count=2, projects=PROJECTS, cmk_limit=cmk_limit, principals=principals) as servers,
    ):
        yield servers


@pytest.fixture(scope="module", params=KINDS)
def pair(
    request: pytest.FixtureRequest, pg: postgres.Postgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[KMSServer]]:
    """A key limit of 1000 (the tests of the limit start their own)."""
    with two_processes(request.param, pg, tmp_path_factory.mktemp(request.param)) as servers:
        yield servers


def clients(servers: list[KMSServer], count: int) -> list[Any]:
    """``count`` boto3 clients, alternating over the servers (one client per thread)."""
    return [servers[number % len(servers)].aws_client() for number in range(count)]


def four_of_eight_within_the_limit(pair: list[KMSServer], call: Callable[[Any, int], Any]) -> None:
    """Eight calls ``call(client, n)`` at once where the limit leaves room for four: four pass, four are refused."""
    racers = clients(pair, 8)
    outcomes = [aws_error(o) for o in fire([lambda c=c, n=n: call(c, n) for n, c in enumerate(racers)])]
    assert outcomes.count("") == 4 and set(outcomes) == {"", "LimitExceededException"}, outcomes


def new_key(server: KMSServer) -> str:
    return str(server.aws_client().create_key(Description="race")["KeyMetadata"]["KeyId"])


@pytest.mark.parametrize("kind", KINDS)
def test_the_key_limit_holds_against_creates_fired_at_two_processes(
    kind: str, pg: postgres.Postgres, tmp_path: Path
) -> None:
    limit = 4
    with two_processes(kind, pg, tmp_path, cmk_limit=limit) as servers:
        racers = clients(servers, 10)
        outcomes = [aws_error(o) for o in fire([lambda c=c: c.create_key(Description="quota") for c in racers])]
        assert outcomes.count("") == limit, outcomes
        assert set(outcomes) == {"", "LimitExceededException"}
        listed = servers[1].aws_client().list_keys(Limit=100)["Keys"]
        assert len(listed) == limit


def test_one_alias_created_at_once_for_two_keys_on_two_processes_names_one_key(pair: list[KMSServer]) -> None:
    for round_ in range(ROUNDS):
        keys = [new_key(server) for server in pair]
        alias = f"alias/race-{round_}-{time.monotonic_ns()}"
        racers = clients(pair, 2)
        calls = [lambda c=c, k=k, a=alias: c.create_alias(AliasName=a, TargetKeyId=k)
                 for c, k in zip(racers, keys, strict=True)]  # fmt: skip
        outcomes = [aws_error(o) for o in fire(calls)]
        assert sorted(outcomes) == ["", "AlreadyExistsException"], outcomes
        winner = keys[outcomes.index("")]
        for server in pair:
            assert server.aws_client().describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] == winner


def test_one_alias_moved_at_once_to_two_keys_ends_on_one_of_them(pair: list[KMSServer]) -> None:
    for round_ in range(ROUNDS):
        origin, *targets = (new_key(pair[number % 2]) for number in range(3))
        alias = f"alias/move-{round_}-{time.monotonic_ns()}"
        pair[0].aws_client().create_alias(AliasName=alias, TargetKeyId=origin)
        racers = clients(pair, 2)
        calls = [lambda c=c, k=k, a=alias: c.update_alias(AliasName=a, TargetKeyId=k)
                 for c, k in zip(racers, targets, strict=True)]  # fmt: skip
        assert [aws_error(o) for o in fire(calls)] == ["", ""]
        named = {server.aws_client().describe_key(KeyId=alias)["KeyMetadata"]["KeyId"] for server in pair}
        assert len(named) == 1 and named <= set(targets)
        counts = [len(pair[0].aws_client().list_aliases(KeyId=key)["Aliases"]) for key in targets]
        assert sorted(counts) == [0, 1]


def test_fifty_aliases_per_key_hold_against_creates_fired_at_two_processes(pair: list[KMSServer]) -> None:
    key = new_key(pair[0])
    kms = pair[0].aws_client()
    for number in range(46):
        kms.create_alias(AliasName=f"alias/many-{key}-{number}", TargetKeyId=key)
    four_of_eight_within_the_limit(
        pair, lambda c, n: c.create_alias(AliasName=f"alias/extra-{key}-{n}", TargetKeyId=key)
    )
    assert len(pair[1].aws_client().list_aliases(KeyId=key, Limit=100)["Aliases"]) == 50


def test_fifty_tags_per_key_hold_against_tags_fired_at_two_processes(pair: list[KMSServer]) -> None:
    key = new_key(pair[0])
    pair[0].aws_client().tag_resource(KeyId=key, Tags=[{"TagKey": f"t{n}", "TagValue": "v"} for n in range(46)])
    four_of_eight_within_the_limit(
        pair, lambda c, n: c.tag_resource(KeyId=key, Tags=[{"TagKey": f"x{n}", "TagValue": "v"}])
    )
    assert len(pair[1].aws_client().list_resource_tags(KeyId=key, Limit=100)["Tags"]) == 50


def test_create_grant_with_one_name_fired_at_two_processes_makes_one_grant(pair: list[KMSServer]) -> None:
    key = new_key(pair[0])
    grantee = f"arn:aws:iam::{ACCOUNT}:user/grantee"
    racers = clients(pair, 6)
    calls = [lambda c=c: c.create_grant(KeyId=key, GranteePrincipal=grantee, Operations=["Decrypt"], Name="once")
             for c in racers]  # fmt: skip
    outcomes = fire(calls)
    assert [aws_error(o) for o in outcomes] == [""] * len(racers)
    assert len({o["GrantId"] for o in outcomes}) == 1
    assert len(pair[1].aws_client().list_grants(KeyId=key)["Grants"]) == 1


def test_a_change_acknowledged_by_one_process_holds_on_the_other_at_the_next_request(pair: list[KMSServer]) -> None:
    first, second = pair[0].aws_client(), pair[1].aws_client()
    key = new_key(pair[0])
    second.encrypt(KeyId=key, Plaintext=b"warm")  # the second replica holds the key in memory
    for _ in range(ROUNDS):
        first.disable_key(KeyId=key)
        assert aws_error(fire([lambda: second.encrypt(KeyId=key, Plaintext=b"x")])[0]) == "DisabledException"
        first.enable_key(KeyId=key)
        assert aws_error(fire([lambda: second.encrypt(KeyId=key, Plaintext=b"x")])[0]) == ""
    account = f"arn:aws:iam::{ACCOUNT}:root"
    allow = {"Sid": "admin", "Effect": "Allow", "Principal": {"AWS": account}, "Action": "kms:*", "Resource": "*"}
    refuse = {"Sid": "no", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:Encrypt", "Resource": "*"}
    deny = {"Version": "2012-10-17", "Statement": [allow, refuse]}
    first.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps(deny))
    assert aws_error(fire([lambda: second.encrypt(KeyId=key, Plaintext=b"x")])[0]) == "AccessDeniedException"


def test_data_keys_made_while_another_process_rotates_all_decrypt(pair: list[KMSServer]) -> None:
    key = new_key(pair[0])
    rotator, makers = pair[0].aws_client(), clients(pair, 4)
    made: list[tuple[bytes, bytes]] = []
    deadline = time.monotonic() + 2.0

    def rotate() -> int:
        rotations = 0
        while time.monotonic() < deadline and rotations < 20:  # a key takes 25 on-demand rotations
            rotator.rotate_key_on_demand(KeyId=key)
            rotations += 1
        return rotations

    def make(client: Any) -> int:
        while time.monotonic() < deadline:
            answer = client.generate_data_key(KeyId=key, NumberOfBytes=32)
            made.append((answer["CiphertextBlob"], answer["Plaintext"]))
            assert client.decrypt(CiphertextBlob=answer["CiphertextBlob"])["Plaintext"] == answer["Plaintext"]
        return 0

    outcomes = fire([rotate, *(lambda c=c: make(c) for c in makers)])
    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    assert outcomes[0] >= 2 and len(made) >= 10, (outcomes[0], len(made))
    for number, (blob, plaintext) in enumerate(made):  # every one of them, through either replica
        assert makers[number % 2].decrypt(CiphertextBlob=blob)["Plaintext"] == plaintext


@pytest.mark.parametrize("kind", KINDS)
def test_a_grant_revoked_through_one_process_no_longer_allows_on_the_other(
    kind: str, pg: postgres.Postgres, tmp_path: Path
) -> None:
    grantee = Principal("grantee", keys=())  # no key of its own: only a grant lets it in
    with two_processes(kind, pg, tmp_path, principals=(grantee,)) as pair:
        key = new_key(pair[0])
        grantee_arn = f"arn:aws:iam::{ACCOUNT}:user/grantee"
        on_second = pair[1].aws_client("grantee")
        assert aws_error(fire([lambda: on_second.encrypt(KeyId=key, Plaintext=b"x")])[0]) == "AccessDeniedException"
        for _ in range(ROUNDS):
            grant = pair[0].aws_client().create_grant(KeyId=key, GranteePrincipal=grantee_arn, Operations=["Encrypt"])
            assert aws_error(fire([lambda: on_second.encrypt(KeyId=key, Plaintext=b"x")])[0]) == ""
            pair[0].aws_client().revoke_grant(KeyId=key, GrantId=grant["GrantId"])
            outcome = fire([lambda: on_second.encrypt(KeyId=key, Plaintext=b"x")])[0]
            assert aws_error(outcome) == "AccessDeniedException"


def _due_in(database_url: str, schema: str, key_ids: list[str], seconds: float) -> None:
    """The test's clock: the wire's shortest pending window is 7 days."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        statement = sql.SQL("UPDATE {}.keys SET deletion_date = extract(epoch FROM now()) + %s WHERE key_id = ANY(%s)")
        connection.execute(statement.format(sql.Identifier(schema)), (seconds, key_ids))


def test_a_cancel_racing_the_destruction_pass_never_loses_a_key_it_acknowledged(
    pg: postgres.Postgres, tmp_path: Path
) -> None:
    """Each key ends either cancelled (and its data keys still open) or destroyed with the cancel refused.

    The keys fall due together; their cancels go out spread around that instant (not to synchronise
    anything: so that some land before the pass, some after, and some with it).
    """
    with (
        fresh_database(pg) as url,
        replicas(tmp_path, url, count=2, projects=PROJECTS, maintenance_interval=0.05) as pair,
    ):
        kms = pair[1].aws_client()
        keys = [new_key(pair[0]) for _ in range(10)]
        blobs = {key: kms.generate_data_key(KeyId=key, NumberOfBytes=32) for key in keys}
        for key in keys:
            kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
        cancellers = clients(pair, len(keys))
        _due_in(url, ACCOUNT, keys, 0.25)
        start = time.monotonic()

        def cancel(number: int) -> Any:
            time.sleep(max(0.0, start + 0.05 * number - time.monotonic()))
            return cancellers[number].cancel_key_deletion(KeyId=keys[number])

        outcomes = fire([lambda n=n: cancel(n) for n in range(len(keys))])
        for key, outcome in zip(keys, outcomes, strict=True):
            if aws_error(outcome) == "":
                assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Disabled", key
                kms.enable_key(KeyId=key)
                answer = kms.decrypt(CiphertextBlob=blobs[key]["CiphertextBlob"])
                assert answer["Plaintext"] == blobs[key]["Plaintext"]
            else:
                assert aws_error(outcome) in {"KMSInvalidStateException", "NotFoundException"}, outcome
                destroyed = fire([lambda k=key: kms.describe_key(KeyId=k)])[0]  # the AWS wire hides destroyed keys
                assert aws_error(destroyed) == "NotFoundException", key


def test_a_new_project_opened_at_once_on_two_replicas_gets_one_root_key(pg: postgres.Postgres, tmp_path: Path) -> None:
    """The AWS account "default" has no root key on either replica (the chart installs only server.projectId's).

    Each replica made its own root key for it; the one whose root check reached the database second
    answered every request of the project with a 500 ("wrong root key or corrupted store"), for ever,
    since its stray root.key stayed on disk. Now (c27013a): service, or a precise refusal, never a second key.
    """
    with fresh_database(pg) as url, replicas(tmp_path, url, count=2) as pair:
        racers = clients(pair, 4)
        outcomes = [aws_error(o) for o in fire([lambda c=c: c.create_key(Description="new") for c in racers])]
        later = [aws_error(o) for o in fire([lambda c=c: c.list_keys() for c in racers])]
    assert "KMSInternalException" not in outcomes + later, (outcomes, later)
    files = [tmp_path / f"replica-{n}" / "keystore" / ACCOUNT / "root.key" for n in range(2)]
    assert len({file.read_bytes() for file in files if file.exists()}) <= 1, "two root keys for one project"


def test_a_v1_create_key_of_one_alias_fired_at_two_processes_makes_one_key(pair: list[KMSServer]) -> None:
    """The operator's create is idempotent by its alias (the KMSKey's): one key, every other create AlreadyExists."""
    for round_ in range(ROUNDS):
        alias = f"operator-{round_}-{time.monotonic_ns()}"
        outcomes = fire([lambda s=s, a=alias: s.call("create_key", a) for s in pair * 3])
        made = [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
        assert len(made) == 1, outcomes
        assert all(isinstance(o, AlreadyExists) for o in outcomes if o is not made[0]), outcomes
        assert {server.call("describe_key", alias).key_id for server in pair} == {made[0].key_id}


def test_lifecycle_calls_fired_together_leave_one_state_and_every_data_key_open(pair: list[KMSServer]) -> None:
    key = new_key(pair[0])
    made: list[dict[str, Any]] = []
    racers = clients(pair, 6)
    for _ in range(ROUNDS):
        outcomes = fire([
            lambda: racers[0].schedule_key_deletion(KeyId=key, PendingWindowInDays=7),
            lambda: racers[1].cancel_key_deletion(KeyId=key),
            lambda: racers[2].disable_key(KeyId=key),
            *(lambda c=c: c.generate_data_key(KeyId=key, NumberOfBytes=32) for c in racers[3:]),
        ])  # fmt: skip
        errors = [aws_error(outcome) for outcome in outcomes]
        assert set(errors) <= {"", "KMSInvalidStateException", "DisabledException"}, errors
        made += [outcome for outcome, error in zip(outcomes[3:], errors[3:], strict=True) if not error]
        states = {server.aws_client().describe_key(KeyId=key)["KeyMetadata"]["KeyState"] for server in pair}
        assert len(states) == 1, states  # both processes see the one outcome at their next request
        if states == {"PendingDeletion"}:
            assert errors[0] == ""  # only a schedule that succeeded leaves the key pending
            pair[1].aws_client().cancel_key_deletion(KeyId=key)
        pair[0].aws_client().enable_key(KeyId=key)
    for number, answer in enumerate(made):
        opened = pair[number % 2].aws_client().decrypt(CiphertextBlob=answer["CiphertextBlob"])
        assert opened["Plaintext"] == answer["Plaintext"]


@pytest.mark.parametrize("kind", KINDS)
def test_an_alias_moved_through_one_process_moves_a_limited_principal_on_the_other(
    kind: str, pg: postgres.Postgres, tmp_path: Path
) -> None:
    """A principal whose ``keys`` name a key by alias follows the alias at once, wherever it was moved."""
    limited = Principal("limited", keys=("moving",))  # the AWS wire's alias/moving
    with two_processes(kind, pg, tmp_path, principals=(limited,)) as pair:
        admin, on_second = pair[0].aws_client(), pair[1].aws_client("limited")
        keys = [new_key(pair[0]) for _ in range(2)]
        admin.create_alias(AliasName="alias/moving", TargetKeyId=keys[0])
        for round_ in range(ROUNDS * 2):
            named, other = keys[round_ % 2], keys[(round_ + 1) % 2]
            allowed = fire([lambda k=named: on_second.encrypt(KeyId=k, Plaintext=b"x")])[0]  # warms the names
            assert aws_error(allowed) == "", round_
            admin.update_alias(AliasName="alias/moving", TargetKeyId=other)
            refused = fire([lambda k=named: on_second.encrypt(KeyId=k, Plaintext=b"x")])[0]
            assert aws_error(refused) == "AccessDeniedException", round_


def _create_in(server: KMSServer, project_id: str, alias: str) -> None:
    """A v1.0 create-key in ``project_id`` (a tenant the admin's projects "*" may open)."""

    async def run() -> None:
        backend = await open_backend(dataclasses.replace(server.backend_config(), project_id=project_id))
        try:
            await backend.create_key(alias)
        finally:
            await backend.close()

    asyncio.run(run())


def test_a_replica_holds_a_bounded_number_of_database_connections_whatever_its_projects(
    pg: postgres.Postgres, tmp_path: Path
) -> None:
    """Each project's keystore had its own pool (min 1): every replica kept one connection per project open for
    ever (10 for 8 projects), so replicas x projects reached PostgreSQL's max_connections (100 by default: ~30
    projects on 3 replicas), and the next project's first request failed with "too many clients"."""
    projects = 8
    with fresh_database(pg) as url, replicas(tmp_path, url, count=1) as (server,):
        for number in range(projects):
            _create_in(server, f"tenant{number}", "first")
        with psycopg.connect(url, autocommit=True) as connection:
            row = connection.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
    assert row is not None and row[0] <= 4, f"{row} connections for {projects} projects"


def test_replicas_started_at_once_on_an_empty_database_share_one_keystore(
    pg: postgres.Postgres, tmp_path: Path
) -> None:
    """Schema creation and migration, the root check and the console schema race on the first start."""
    with fresh_database(pg) as url, replicas(tmp_path, url, count=3, projects=PROJECTS, together=True) as servers:
        made = fire([lambda s=s: s.aws_client().create_key(Description="first") for s in servers])
        assert [aws_error(outcome) for outcome in made] == ["", "", ""]
        for server in servers:
            listed = {key["KeyId"] for key in server.aws_client().list_keys()["Keys"]}
            assert listed == {outcome["KeyMetadata"]["KeyId"] for outcome in made}
