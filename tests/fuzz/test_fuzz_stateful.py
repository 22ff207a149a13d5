"""Stateful: valid lifecycle calls on both wires move keys through their states; hostile requests in between
are refused with the wire's error code and change nothing, whatever state the keys are in."""

from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

from fuzz_checks import call, snapshot, violations
from fuzz_http import Connection
from fuzz_requests import AWS_OPERATIONS, Target, encode, hostile_case, json_bytes
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

ENABLED, DISABLED, PENDING_DELETION = "2", "3", "4"
_AWS = {op.name: op for op in AWS_OPERATIONS}
_aliases = itertools.count()


def aws_call(connection: Connection, target: Target, operation: str, body: dict[str, Any]) -> Any:
    answer = connection.send(encode(_AWS[operation], target, json_bytes(body)))
    assert answer.status == 200, (operation, answer.status, answer.body[:300])
    return answer.json()


class Keystore(RuleBasedStateMachine):
    """Model: each key created in this run with its expected state and tags."""

    keys = Bundle("keys")
    target: Target
    connection: Connection
    hostile_requests = 0
    states_seen: set[str] = set()

    def __init__(self) -> None:
        super().__init__()
        self.states: dict[str, str] = {}
        self.tags: dict[str, dict[str, str]] = {}

    def on(self, key_id: str) -> Target:
        return replace(self.target, key_id=key_id, alias=f"no-alias-{key_id}")

    @initialize(target=keys)
    def first_key(self) -> str:
        return self.create_key(wire="v1")

    @rule(target=keys, wire=st.sampled_from(["v1", "aws"]))
    def create_key(self, wire: str) -> str:
        if wire == "v1":
            alias = f"stateful-{next(_aliases)}"
            key_id = call(self.connection, self.target, "create-key", {"key_alias": alias})["key_info"]["key_id"]
        else:
            key_id = aws_call(self.connection, self.target, "CreateKey", {"Description": "stateful"})["KeyMetadata"][
                "KeyId"
            ]
        self.states[key_id], self.tags[key_id] = ENABLED, {}
        return key_id

    @rule(key=keys, wire=st.sampled_from(["v1", "aws"]))
    def disable(self, key: str, wire: str) -> None:
        if self.states[key] != ENABLED:
            return
        if wire == "v1":
            call(self.connection, self.on(key), "disable-key")
        else:
            aws_call(self.connection, self.on(key), "DisableKey", {"KeyId": key})
        self.states[key] = DISABLED

    @rule(key=keys, wire=st.sampled_from(["v1", "aws"]))
    def enable(self, key: str, wire: str) -> None:
        if self.states[key] != DISABLED:
            return
        if wire == "v1":
            call(self.connection, self.on(key), "enable-key")
        else:
            aws_call(self.connection, self.on(key), "EnableKey", {"KeyId": key})
        self.states[key] = ENABLED

    @rule(key=keys)
    def schedule_deletion(self, key: str) -> None:
        if self.states[key] == PENDING_DELETION:
            return
        call(self.connection, self.on(key), "schedule-key-deletion", {"key_id": key, "pending_days": "7"})
        self.states[key] = PENDING_DELETION

    @rule(key=keys)
    def cancel_deletion(self, key: str) -> None:
        if self.states[key] != PENDING_DELETION:
            return
        call(self.connection, self.on(key), "cancel-key-deletion")
        self.states[key] = DISABLED  # as on AWS and Huawei: back, but disabled

    # a valid tag value holds no control character (Unicode Cc: refused on every wire since 38773ca, as AWS does)
    @rule(key=keys, tag_key=st.sampled_from(["team", "env", "ünï"]),
          value=st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=20))  # fmt: skip
    def tag(self, key: str, tag_key: str, value: str) -> None:
        if self.states[key] == PENDING_DELETION:
            return
        tags = [{"TagKey": tag_key, "TagValue": value}]
        aws_call(self.connection, self.on(key), "TagResource", {"KeyId": key, "Tags": tags})
        self.tags[key][tag_key] = value

    @rule(key=keys, data=st.data())
    def hostile(self, key: str, data: st.DataObject) -> None:
        before = snapshot(self.connection, self.target, self.states)
        case = data.draw(hostile_case(self.on(key)))
        answer = self.connection.send(case.request)
        assert not violations(case, answer), (case.defect, case.request, violations(case, answer))
        assert snapshot(self.connection, self.target, self.states) == before, (case.defect, case.request)
        Keystore.hostile_requests += 1
        Keystore.states_seen.add(self.states[key])

    @invariant()
    def server_matches_model(self) -> None:
        state = snapshot(self.connection, self.target, self.states)
        for key_id, expected in self.states.items():
            assert state[key_id]["details"]["key_state"] == expected
            assert {t["key"]: t["value"] for t in state[key_id]["tags"]} == self.tags[key_id]


def test_refusals_change_nothing_in_any_state(target: Target, connection: Connection) -> None:
    Keystore.target, Keystore.connection = target, connection
    sample = settings(
        max_examples=50,  # hostile steps land on random states; at 30, one CI run saw no DISABLED key
        stateful_step_count=25,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    run_state_machine_as_test(Keystore, settings=sample)
    assert Keystore.hostile_requests >= 20  # about one step in eight; the exact count varies with the run
    assert Keystore.states_seen == {ENABLED, DISABLED, PENDING_DELETION}
