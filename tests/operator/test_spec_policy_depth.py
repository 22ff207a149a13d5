"""spec.policy is free-form below Statement: a policy nested deeper than the grammar needs is refused
before it is encoded or sent anywhere, without recursion (the apiserver stores ~10,000 levels)."""

from __future__ import annotations

from typing import Any

import pytest

from kubekms_operator.spec import MAX_POLICY_DEPTH, InvalidSpec, parse_key


def policy(depth: int) -> dict[str, Any]:
    """A policy whose innermost value sits ``depth`` objects deep (the policy itself is level 1)."""
    inner: dict[str, Any] = {}
    for _ in range(depth - 4):  # policy > Statement list > statement > Condition > ...
        inner = {"a": inner}
    statement = {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*", "Condition": inner}
    return {"Version": "2012-10-17", "Statement": [statement]}


def parse(spec: dict[str, Any]) -> None:
    parse_key(spec, namespace="ns", name="app", uid="u", annotations={})


def test_a_policy_as_deep_as_the_bound_is_taken() -> None:
    parse({"policy": policy(MAX_POLICY_DEPTH)})


@pytest.mark.parametrize("depth", [MAX_POLICY_DEPTH + 1, 9_000])
def test_a_deeper_policy_is_refused(depth: int) -> None:
    with pytest.raises(InvalidSpec, match=f"spec.policy nests deeper than {MAX_POLICY_DEPTH} levels"):
        parse({"policy": policy(depth)})
