"""The key policy grammar and its evaluation (kubekms.policies), without a server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from kubekms.backend import GrantTerms
from kubekms.policies import (
    Decision,
    PolicyError,
    PolicyRequest,
    default_policy,
    evaluate,
    grant_allows,
    grant_may_create,
    parse_policy,
    policy_action,
)
from kubekms.policies.actions import ACTION_BY_PERMISSION
from kubekms.server.aws_operations import OPERATIONS as AWS_OPERATIONS
from kubekms.server.operations import OPERATIONS as V1_OPERATIONS
from kubekms.server.principals import policy_context

KEY = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
ROOT = {"AWS": "arn:aws:iam::acct:root"}


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(principal: Any = ROOT, action: Any = "kms:*", resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Principal": principal, "Action": action, "Resource": resource, **extra}


def decide(document: str, action: str = "kms:Encrypt", principal: str = "app", **context: str) -> Decision:
    request = PolicyRequest(principal, "acct", action, KEY, encryption_context=lambda: context)
    return evaluate(parse_policy(document), request)


def test_the_default_policy_delegates_everything_to_the_account() -> None:
    assert decide(default_policy("acct"), "kms:PutKeyPolicy") is Decision.DELEGATED
    assert decide(default_policy("other")) is Decision.NO_MATCH  # another account's root is not ours


def test_explicit_deny_wins_over_any_allow() -> None:
    deny = {"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::acct:user/app"}, "Action": "kms:Encrypt",
            "Resource": "*"}  # fmt: skip
    document = doc(allow("*"), deny)
    assert decide(document) is Decision.DENY
    assert decide(document, principal="ops") is Decision.ALLOW
    assert decide(document, action="kms:Decrypt") is Decision.ALLOW


def test_principals_actions_and_resources() -> None:
    named = doc(allow({"AWS": ["arn:aws:iam::acct:user/app", "acct"]}, ["kms:Generate*", "kms:Decrypt"]))
    assert decide(named, "kms:GenerateDataKeyWithoutPlaintext") is Decision.ALLOW
    assert decide(named, "kms:generatedatakey", principal="ops") is Decision.DELEGATED  # actions ignore case
    assert decide(named, "kms:Encrypt") is Decision.NO_MATCH
    assert decide(doc(allow("*", resource=f"arn:aws:kms:*:acct:key/{KEY}"))) is Decision.ALLOW
    assert decide(doc(allow("*", resource=f"arn:aws:kms:eu-west-1:acct:key/{KEY}"))) is Decision.ALLOW
    assert decide(doc(allow("*", resource="arn:aws:kms:*:acct:key/other"))) is Decision.NO_MATCH
    assert decide(doc(allow({"Service": "logs.amazonaws.com"}))) is Decision.NO_MATCH


@pytest.mark.parametrize(
    ("operator", "value", "context", "expected"),
    [
        ("StringEquals", "blue", {"tenant": "blue"}, True),
        ("StringEquals", "blue", {"tenant": "Blue"}, False),
        ("StringEquals", "blue", {}, False),
        ("StringEqualsIgnoreCase", "blue", {"TENANT": "BLUE"}, True),  # condition key names ignore case
        ("StringNotEquals", "blue", {"tenant": "red"}, True),
        ("StringNotEquals", "blue", {}, True),  # AWS: an absent key satisfies a negated operator
        ("StringLike", "team-*", {"tenant": "team-7"}, True),
        ("StringLike", "team-?", {"tenant": "team-77"}, False),
        ("StringNotLike", "team-*", {"tenant": "team-7"}, False),
        ("StringEqualsIfExists", "blue", {}, True),
        ("StringEqualsIfExists", "blue", {"tenant": "red"}, False),
    ],
)
def test_encryption_context_conditions(operator: str, value: str, context: dict[str, str], expected: bool) -> None:
    condition = {operator: {"kms:EncryptionContext:tenant": value}}
    document = doc(allow("*", Condition=condition))
    assert (decide(document, **context) is Decision.ALLOW) is expected


def test_other_condition_keys_and_null() -> None:
    assert decide(doc(allow("*", Condition={"StringEquals": {"kms:CallerAccount": "acct"}}))) is Decision.ALLOW
    assert decide(doc(allow("*", Condition={"StringEquals": {"kms:CallerAccount": "x"}}))) is Decision.NO_MATCH
    assert decide(doc(allow("*", Condition={"StringEquals": {"kms:ViaService": "s3"}}))) is Decision.NO_MATCH
    no_context = {"Null": {"kms:EncryptionContext:tenant": "true"}}
    assert decide(doc(allow("*", Condition=no_context))) is Decision.ALLOW
    assert decide(doc(allow("*", Condition=no_context)), tenant="x") is Decision.NO_MATCH
    both = {"StringEquals": {"kms:EncryptionContext:a": "1", "kms:EncryptionContext:b": ["2", "3"]}}
    assert decide(doc(allow("*", Condition=both)), a="1", b="3") is Decision.ALLOW
    assert decide(doc(allow("*", Condition=both)), a="1") is Decision.NO_MATCH


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("[]", "JSON object"),
        ('{"Version": "2012-10-17", "Statement": []}', "non-empty list"),
        ('{"Version": "2020-01-01", "Statement": {}}', "Version must be"),
        (doc({"Effect": "Allow", "Action": "kms:*", "Resource": "*"}), "Principal is required"),
        (doc(allow(action="s3:GetObject")), "not a KMS action"),
        (doc(allow(principal={"AWS": "arn:aws:iam::acct:group/x"})), "IAM root, user or role ARN"),
        (doc(allow(resource=["arn:${aws:username}"])), "policy variables"),
        (doc(allow(Condition={"DateGreaterThan": {"aws:CurrentTime": "x"}})), "operator 'DateGreaterThan'"),
        (doc(allow(Condition={"Null": {"kms:CallerAccount": "maybe"}})), "'true' or 'false'"),
        (doc({**allow(), "NotPrincipal": "*"}), "NotPrincipal not supported"),
        ('{"Version": "2012-10-17", "Statement": {}, "Extra": 1}', "Extra not allowed"),
    ],
)
def test_malformed_policies_are_refused_precisely(text: str, needle: str) -> None:
    with pytest.raises(PolicyError) as raised:
        parse_policy(text)
    assert needle in str(raised.value)


def test_every_wire_permission_has_the_aws_action_of_the_same_effect() -> None:
    permissions = {operation.permission for operation in AWS_OPERATIONS.values()} | set(V1_OPERATIONS)
    assert permissions <= set(ACTION_BY_PERMISSION)
    assert policy_action("create-datakey-without-plaintext") == "kms:GenerateDataKeyWithoutPlaintext"
    assert policy_action("re-encrypt") == "kms:ReEncryptFrom"


@pytest.mark.parametrize(
    ("body", "operation", "expected"),
    [
        (b'{"EncryptionContext": {"t": "1"}}', "Decrypt", {"t": "1"}),  # AWS wire
        (
            b'{"SourceEncryptionContext": {"t": "2"}, "DestinationEncryptionContext": {"t": "3"}}',
            "ReEncrypt",
            {"t": "2"},
        ),
        (b'{"encryption_context": {"t": "4"}}', "decrypt-datakey", {"t": "4"}),  # KMS v1.0 wire
        (b'{"SourceEncryptionContext": {"t": "2"}}', "Decrypt", {}),  # not Decrypt's field (S9-H1-4)
        (b'{"encryption_context": {"t": "4"}}', "Decrypt", {}),  # the other wire's name
        (b'{"EncryptionContext": {"t": "1"}}', "ReEncrypt", {}),  # ReEncrypt opens with its source context
        (b'{"EncryptionContext": {"t": "1"}}', "DescribeKey", {}),  # an operation without a context
        (b'{"EncryptionContext": {"t": 5}}', "Decrypt", {}),  # refused by the operation itself
        (b"\x08\x01binary", "Decrypt", {}),  # the Cloud KMS wire's protobuf
        (b"", "Decrypt", {}),
        # a v1.0 text AAD wins over encryption_context, and is the context it seals as, byte for byte (S9-H1-8)
        (
            b'{"additional_authenticated_data": "{\\"t\\":\\"6\\"}", "encryption_context": {"t": "4"}}',
            "decrypt-data",
            {"t": "6"},
        ),
        (b'{"additional_authenticated_data": "{\\"t\\": \\"6\\"}"}', "decrypt-data", {}),  # seals other bytes
        (b'{"additional_authenticated_data": "tenant=6"}', "decrypt-datakey", {}),
        (b'{"source_additional_authenticated_data": "{\\"t\\":\\"7\\"}"}', "re-encrypt", {"t": "7"}),
    ],
)
def test_the_encryption_context_a_policy_condition_sees(body: bytes, operation: str, expected: dict[str, str]) -> None:
    assert policy_context(body, operation) == expected


def test_a_policy_naming_a_member_twice_is_refused_new_and_read_as_before_when_stored() -> None:
    twice = '{"Version": "2012-10-17", "Statement": [' + json.dumps(allow())[:-1] + ', "Effect": "Deny"}]}'
    with pytest.raises(PolicyError, match="'Effect' twice"):
        parse_policy(twice)
    # a key an older server stored it on keeps working as it did: the last one wins
    (statement,) = parse_policy(twice, stored=True).statements
    assert statement.effect.value == "Deny"


def test_a_grant_allows_its_operations_to_its_grantee_under_its_constraint() -> None:
    def allows(terms: GrantTerms, action: str = "kms:Decrypt", principal: str = "app", **context: str) -> bool:
        return grant_allows(terms, PolicyRequest(principal, "acct", action, KEY, encryption_context=lambda: context))

    app = "arn:aws:iam::acct:user/app"
    assert allows(GrantTerms(app, ("Decrypt",)))
    assert not allows(GrantTerms(app, ("Decrypt",)), principal="ops")
    assert not allows(GrantTerms(app, ("Decrypt",)), action="kms:Encrypt")
    subset = GrantTerms(app, ("Decrypt",), context_subset={"t": "1"})
    assert allows(subset, t="1", extra="x") and not allows(subset, t="2") and not allows(subset)
    equals = GrantTerms(app, ("Decrypt",), context_equals={"t": "1"})
    assert allows(equals, t="1") and not allows(equals, t="1", extra="x")


def test_a_grant_made_with_v1_names_allows_only_the_permissions_it_named() -> None:
    app = "arn:aws:iam::acct:user/app"
    data_keys_only = GrantTerms(app, ("Decrypt",), permissions=("decrypt-datakey",))

    def allows(terms: GrantTerms, permission: str) -> bool:
        return grant_allows(terms, PolicyRequest("app", "acct", "kms:Decrypt", KEY, permission=permission))

    assert allows(data_keys_only, "decrypt-datakey") and not allows(data_keys_only, "decrypt-data")
    assert allows(GrantTerms(app, ("Decrypt",)), "decrypt-data")  # made on the AWS wire: every Decrypt call
    # a sub-grant stays within the names: not decrypt-data by its v1.0 name, nor by AWS's Decrypt (which has it)
    parent = GrantTerms(app, ("Decrypt", "CreateGrant"), permissions=("decrypt-datakey", "create-grant"))
    assert grant_may_create(parent, GrantTerms("b", ("Decrypt",), permissions=("decrypt-datakey",)))
    assert not grant_may_create(parent, GrantTerms("b", ("Decrypt",), permissions=("decrypt-data",)))
    assert not grant_may_create(parent, GrantTerms("b", ("Decrypt",)))
