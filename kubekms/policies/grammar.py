"""A key policy document in AWS's grammar, parsed and checked into typed statements.

Accepted: ``Version`` (2012-10-17 or 2008-10-17), optional ``Id``, ``Statement`` (one object or a
list) with ``Sid``, ``Effect`` (Allow/Deny), ``Principal`` (``"*"`` or ``{"AWS": ...}``; ``Service``
entries are kept but never match a principal of this server), ``Action`` and ``Resource`` (a
string or a list, ``*``/``?`` wildcards) and ``Condition``. What this server could not evaluate
faithfully (``NotPrincipal``, ``NotAction``, ``NotResource``, unknown operators or condition keys,
policy variables) is refused with a precise :class:`PolicyError` rather than silently ignored:
a Deny that never matches would be worse than a refusal.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

VERSIONS = ("2012-10-17", "2008-10-17")
MAX_POLICY_CHARS = 32768
STRING_OPERATORS = (
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
)
OPERATORS = (*STRING_OPERATORS, *(name + "IfExists" for name in STRING_OPERATORS), "Null")
CONTEXT_KEY_PREFIX = "kms:encryptioncontext:"
CONDITION_KEYS = ("kms:CallerAccount", "kms:ViaService", "aws:PrincipalArn")
_ACCOUNT = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PRINCIPAL_ARN = re.compile(r"arn:aws:iam::(?P<account>[A-Za-z0-9_-]{1,64}):(?P<kind>root|user|role)(/(?P<name>.+))?")
_ACTION = re.compile(r"\*|kms:[A-Za-z*?]+", re.IGNORECASE)


class PolicyError(ValueError):
    """The document is not a key policy this server can evaluate; the message says where and why."""


class Effect(StrEnum):
    ALLOW = "Allow"
    DENY = "Deny"


@dataclass(frozen=True)
class PrincipalRef:
    """One entry of ``Principal``: everyone, an account (root: delegate to the principals file) or one principal."""

    everyone: bool = False
    account: str = ""
    name: str = ""  # a user or role name within ``account``; "" with an account means the account itself
    service: str = ""  # an AWS service principal: never one of this server's principals


@dataclass(frozen=True)
class Condition:
    operator: str  # one of OPERATORS
    key: str  # lower case: condition keys compare case-insensitively
    values: tuple[str, ...]


@dataclass(frozen=True)
class Statement:
    sid: str
    effect: Effect
    principals: tuple[PrincipalRef, ...]
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class KeyPolicy:
    version: str
    statements: tuple[Statement, ...]


def _strings(value: Any, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(item, str) and item for item in items):
        raise PolicyError(f"{where} must be a non-empty string or a non-empty list of non-empty strings")
    if any("${" in item for item in items):
        raise PolicyError(f"{where}: policy variables (${{...}}) are not supported")
    return tuple(items)


def _principal(value: str, where: str) -> PrincipalRef:
    if value == "*":
        return PrincipalRef(everyone=True)
    arn = _PRINCIPAL_ARN.fullmatch(value)
    if arn is not None:
        if (arn["kind"] == "root") != (arn["name"] is None):
            raise PolicyError(f"{where}: {value!r} is not an IAM root, user or role ARN")
        return PrincipalRef(account=arn["account"], name=(arn["name"] or "").rsplit("/", 1)[-1])
    if _ACCOUNT.fullmatch(value):
        return PrincipalRef(account=value)
    raise PolicyError(f"{where}: {value!r} is neither '*', an account id nor an IAM root, user or role ARN")


def _principals(value: Any, where: str) -> tuple[PrincipalRef, ...]:
    if value == "*":
        return (PrincipalRef(everyone=True),)
    if not isinstance(value, dict) or not value or not set(value) <= {"AWS", "Service"}:
        raise PolicyError(f"{where} must be '*' or an object with AWS (and Service) entries")
    refs = []
    if "AWS" in value:
        refs += [_principal(item, f"{where}.AWS") for item in _strings(value["AWS"], f"{where}.AWS")]
    if "Service" in value:
        refs += [PrincipalRef(service=item) for item in _strings(value["Service"], f"{where}.Service")]
    return tuple(refs)


def _actions(value: Any, where: str) -> tuple[str, ...]:
    actions = _strings(value, where)
    for action in actions:
        if not _ACTION.fullmatch(action):
            raise PolicyError(f"{where}: {action!r} is not a KMS action (kms:<Operation>, wildcards * and ?)")
    return actions


def _condition_key(key: str, where: str) -> str:
    lowered = key.lower()
    if lowered.startswith(CONTEXT_KEY_PREFIX) and len(lowered) > len(CONTEXT_KEY_PREFIX):
        return lowered
    if lowered in (known.lower() for known in CONDITION_KEYS):
        return lowered
    raise PolicyError(
        f"{where}: condition key {key!r} is not supported; supported: kms:EncryptionContext:<key>, "
        + ", ".join(CONDITION_KEYS)
    )


def _conditions(value: Any, where: str) -> tuple[Condition, ...]:
    if not isinstance(value, dict):
        raise PolicyError(f"{where} must be an object of operator -> {{key: value(s)}}")
    conditions = []
    for operator, block in value.items():
        if operator not in OPERATORS:
            raise PolicyError(f"{where}: operator {operator!r} is not supported; supported: {', '.join(OPERATORS)}")
        if not isinstance(block, dict) or not block:
            raise PolicyError(f"{where}.{operator} must be a non-empty object of condition key -> value(s)")
        for key, values in block.items():
            parsed = _strings(values, f"{where}.{operator}.{key}")
            if operator == "Null" and not set(parsed) <= {"true", "false"}:
                raise PolicyError(f"{where}.Null.{key} must be 'true' or 'false'")
            conditions.append(Condition(operator, _condition_key(key, f"{where}.{operator}"), parsed))
    return tuple(conditions)


_STATEMENT_FIELDS = {"Sid", "Effect", "Principal", "Action", "Resource", "Condition"}


def _statement(value: Any, where: str) -> Statement:
    if not isinstance(value, dict):
        raise PolicyError(f"{where} must be an object")
    unknown = set(value) - _STATEMENT_FIELDS
    if unknown:
        fields = ", ".join(sorted(_STATEMENT_FIELDS))
        raise PolicyError(f"{where}: {', '.join(sorted(unknown))} not supported; a statement has {fields}")
    sid = value.get("Sid", "")
    if not isinstance(sid, str):
        raise PolicyError(f"{where}.Sid must be a string")
    effect = value.get("Effect")
    if effect not in (Effect.ALLOW.value, Effect.DENY.value):
        raise PolicyError(f"{where}.Effect must be 'Allow' or 'Deny'")
    for required in ("Principal", "Action", "Resource"):
        if required not in value:
            raise PolicyError(f"{where}: {required} is required in a key policy statement")
    return Statement(
        sid=sid,
        effect=Effect(effect),
        principals=_principals(value["Principal"], f"{where}.Principal"),
        actions=_actions(value["Action"], f"{where}.Action"),
        resources=_strings(value["Resource"], f"{where}.Resource"),
        conditions=_conditions(value.get("Condition", {}), f"{where}.Condition"),
    )


def _document(text: str, *, stored: bool) -> Mapping[str, Any]:
    if not isinstance(text, str) or not 1 <= len(text) <= MAX_POLICY_CHARS:
        raise PolicyError(f"a key policy is a JSON document of 1-{MAX_POLICY_CHARS} characters")
    try:
        # a stored document is read as older servers read it when they stored it (the last of a twice-named member)
        document = json.loads(text) if stored else json.loads(text, object_pairs_hook=_unique_members)
    except PolicyError:
        raise
    except (ValueError, RecursionError):
        raise PolicyError("the key policy is not valid JSON") from None
    if not isinstance(document, dict):
        raise PolicyError("the key policy must be a JSON object")
    return document


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose members are named once: a document naming one twice means the first to some readers
    (a reviewer reading GetKeyPolicy) and the last to json.loads, so ``"Effect": "Deny", ..., "Effect": "Allow"``
    would look like a denial and allow (S9-H1-7)."""
    members: dict[str, Any] = {}
    for name, value in pairs:
        if name in members:
            raise PolicyError(f"the key policy names the member {name!r} twice in one object")
        members[name] = value
    return members


@functools.lru_cache(maxsize=1024)  # every authorised call of a key with its own policy parses it
def parse_policy(text: str, *, stored: bool = False) -> KeyPolicy:
    """The policy in ``text``, or :class:`PolicyError` saying precisely what is wrong.

    ``stored``: a key's policy as kept, which older servers let name a member twice; a new document may not.
    """
    document = _document(text, stored=stored)
    unknown = set(document) - {"Version", "Id", "Statement"}
    if unknown:
        raise PolicyError(f"{', '.join(sorted(unknown))} not allowed at the top of a policy (Version, Id, Statement)")
    version = document.get("Version")
    if version not in VERSIONS:
        raise PolicyError(f"Version must be one of {', '.join(VERSIONS)}")
    if not isinstance(document.get("Id", ""), str):
        raise PolicyError("Id must be a string")
    raw = document.get("Statement")
    raw_statements = [raw] if isinstance(raw, dict) else raw
    if not isinstance(raw_statements, list) or not raw_statements:
        raise PolicyError("Statement must be a statement object or a non-empty list of them")
    return KeyPolicy(version, tuple(_statement(item, f"Statement[{i}]") for i, item in enumerate(raw_statements)))


def default_policy(account: str) -> str:
    """AWS's default key policy: the account (its root) controls the key; the principals file decides who in it."""
    statement = {
        "Sid": "Enable IAM User Permissions",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    return json.dumps({"Version": "2012-10-17", "Id": "key-default-1", "Statement": [statement]}, indent=2)
