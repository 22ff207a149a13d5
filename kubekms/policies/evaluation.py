"""One request against one key policy: AWS's evaluation, reduced to what a key policy decides.

An explicit Deny that matches wins. Otherwise an Allow that names the caller (``*`` or its
user/role ARN) allows on its own; an Allow that names the caller's account (its root, or the
bare account id) delegates to the caller's own permissions (the principals file, AWS's IAM
policies); nothing matching is an implicit deny.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from kubekms.policies.grammar import CONTEXT_KEY_PREFIX, Condition, Effect, KeyPolicy, PrincipalRef, Statement
from kubekms.policies.matching import wildcard_match


class Decision(enum.Enum):
    DENY = "explicit deny"
    ALLOW = "allowed by the key policy"
    DELEGATED = "allowed if the principal's own permissions allow"
    NO_MATCH = "no statement allows"


@dataclass(frozen=True)
class PolicyRequest:
    """Who asks for which action on which key; the encryption context is read only if a condition needs it."""

    principal: str
    account: str
    action: str  # "kms:Encrypt"
    key_id: str
    encryption_context: Callable[[], Mapping[str, str]] = field(default=dict)
    via_service: str = ""
    permission: str = ""  # the wire's permission the call needs (v1.0 names); '' when only the action is known

    @property
    def principal_arn(self) -> str:
        return f"arn:aws:iam::{self.account}:user/{self.principal}"

    def key_arn(self, region: str) -> str:
        return f"arn:aws:kms:{region}:{self.account}:key/{self.key_id}"

    def condition_value(self, key: str) -> str | None:
        """The request's value of a (lower-case) condition key, None when the request has none."""
        if key.startswith(CONTEXT_KEY_PREFIX):
            wanted = key.removeprefix(CONTEXT_KEY_PREFIX)
            return next((v for k, v in self.encryption_context().items() if k.lower() == wanted), None)
        values = {"kms:calleraccount": self.account, "kms:viaservice": self.via_service or None,
                  "aws:principalarn": self.principal_arn}  # fmt: skip
        return values[key]


def _names(ref: PrincipalRef, request: PolicyRequest) -> Decision | None:
    if ref.everyone:
        return Decision.ALLOW
    if ref.service or ref.account != request.account:
        return None
    if not ref.name:
        return Decision.DELEGATED
    return Decision.ALLOW if ref.name == request.principal else None


def _resource_matches(pattern: str, request: PolicyRequest) -> bool:
    """``*`` is the key itself; an ARN pattern matches the key's ARN in any region (keys here have none)."""
    if pattern == "*":
        return True
    parts = pattern.split(":", 5)
    region = parts[3] if len(parts) == 6 else ""
    return wildcard_match(pattern, request.key_arn(region))


def _condition_holds(condition: Condition, request: PolicyRequest) -> bool:
    value = request.condition_value(condition.key)
    if condition.operator == "Null":
        return (value is None) == (condition.values[0] == "true")
    operator = condition.operator.removesuffix("IfExists")
    if value is None:  # AWS: an absent key matches only the negated operators and ...IfExists
        return operator != condition.operator or "Not" in operator
    ignore_case = operator.endswith("IgnoreCase")
    if "Like" in operator:
        matched = any(wildcard_match(pattern, value) for pattern in condition.values)
    elif ignore_case:
        matched = any(candidate.lower() == value.lower() for candidate in condition.values)
    else:
        matched = value in condition.values
    return not matched if "Not" in operator else matched


def _applies(statement: Statement, request: PolicyRequest) -> Decision | None:
    if not any(wildcard_match(pattern, request.action, ignore_case=True) for pattern in statement.actions):
        return None
    if not any(_resource_matches(pattern, request) for pattern in statement.resources):
        return None
    named = [decision for ref in statement.principals if (decision := _names(ref, request)) is not None]
    if not named or not all(_condition_holds(condition, request) for condition in statement.conditions):
        return None
    return Decision.ALLOW if Decision.ALLOW in named else Decision.DELEGATED


def evaluate(policy: KeyPolicy, request: PolicyRequest) -> Decision:
    decisions = []
    for statement in policy.statements:
        decision = _applies(statement, request)
        if decision is not None and statement.effect is Effect.DENY:
            return Decision.DENY
        if decision is not None:
            decisions.append(decision)
    if Decision.ALLOW in decisions:
        return Decision.ALLOW
    return Decision.DELEGATED if decisions else Decision.NO_MATCH
