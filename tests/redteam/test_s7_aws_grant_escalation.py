"""A grant that allows CreateGrant lets its grantee make grants of the same operations or fewer, never more.

AWS: "the grantee can create grants only with operations in the parent grant" (and constraints
as strict). A principal limited to one key (its key list) that holds a grant with CreateGrant and
Decrypt on another key could give itself, or anyone, Encrypt, ReEncrypt, GenerateDataKey on it.
A principal whose key list or the key's policy allows CreateGrant is not limited by its grants.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest
from aws_refusal_support import refused

from kubekms.backend import GrantTerms
from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server
from kubekms.policies import grant_may_create

ACTIONS = ("encrypt-datakey", "decrypt-datakey", "describe-key", "create-grant", "list-grants")
BOB, CAROL = "arn:aws:iam::default:user/bob", "arn:aws:iam::default:user/carol"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    principals = (Principal("bob", actions=ACTIONS, keys=("own",)), Principal("carol", actions=ACTIONS, keys=("own",)))
    with kms_server(tmp_path_factory.mktemp("kms"), principals=principals, project_id="default") as running:
        yield running


def test_a_create_grant_grant_cannot_widen_the_operations(server: KMSServer) -> None:
    admin, bob = server.aws_client(), server.aws_client("bob")
    key_id = admin.create_key()["KeyMetadata"]["KeyId"]
    secret = admin.encrypt(KeyId=key_id, Plaintext=b"secret")["CiphertextBlob"]
    admin.create_grant(KeyId=key_id, GranteePrincipal=BOB, Operations=["CreateGrant", "Decrypt"])
    for operations in (["Decrypt", "Encrypt"], ["GenerateDataKey"], ["CreateGrant", "ReEncryptFrom"]):
        for grantee in (BOB, CAROL):
            widened = functools.partial(bob.create_grant, KeyId=key_id, GranteePrincipal=grantee, Operations=operations)
            assert refused(widened) == "AccessDeniedException"
    assert refused(lambda: bob.encrypt(KeyId=key_id, Plaintext=b"x")) == "AccessDeniedException"
    carol_grant = bob.create_grant(KeyId=key_id, GranteePrincipal=CAROL, Operations=["Decrypt"])
    assert server.aws_client("carol").decrypt(CiphertextBlob=secret)["Plaintext"] == b"secret"
    grants = admin.list_grants(KeyId=key_id)["Grants"]
    assert sorted(tuple(g["Operations"]) for g in grants) == [("CreateGrant", "Decrypt"), ("Decrypt",)]
    assert carol_grant["GrantId"] in {g["GrantId"] for g in grants}


def test_the_key_list_is_not_limited_by_grants(server: KMSServer) -> None:
    admin, bob = server.aws_client(), server.aws_client("bob")
    key_id = admin.create_key()["KeyMetadata"]["KeyId"]
    admin.create_alias(AliasName="alias/own", TargetKeyId=key_id)
    admin.create_grant(KeyId=key_id, GranteePrincipal=BOB, Operations=["CreateGrant"])
    assert bob.create_grant(KeyId=key_id, GranteePrincipal=CAROL, Operations=["Encrypt", "Decrypt"])["GrantId"]


def test_a_constrained_parent_makes_only_grants_as_strict() -> None:
    parent = GrantTerms(BOB, ("CreateGrant", "Decrypt"), context_subset={"app": "a"})
    assert grant_may_create(parent, GrantTerms(CAROL, ("Decrypt",), context_subset={"app": "a", "x": "1"}))
    assert grant_may_create(parent, GrantTerms(CAROL, ("Decrypt",), context_equals={"app": "a"}))
    assert not grant_may_create(parent, GrantTerms(CAROL, ("Decrypt",)))
    assert not grant_may_create(parent, GrantTerms(CAROL, ("Decrypt",), context_subset={"app": "b"}))
    exact = GrantTerms(BOB, ("CreateGrant", "Decrypt"), context_equals={"app": "a"})
    assert grant_may_create(exact, GrantTerms(CAROL, ("Decrypt",), context_equals={"app": "a"}))
    assert not grant_may_create(exact, GrantTerms(CAROL, ("Decrypt",), context_subset={"app": "a"}))


def test_a_constrained_create_grant_grant_makes_grants_as_strict(server: KMSServer) -> None:
    admin, bob = server.aws_client(), server.aws_client("bob", validate=False)
    key_id = admin.create_key()["KeyMetadata"]["KeyId"]
    admin.create_grant(KeyId=key_id, GranteePrincipal=BOB, Operations=["CreateGrant", "Decrypt"],
                       Constraints={"EncryptionContextSubset": {"app": "a"}})  # fmt: skip
    stricter = {"EncryptionContextSubset": {"app": "a", "part": "1"}}
    made = bob.create_grant(KeyId=key_id, GranteePrincipal=CAROL, Operations=["Decrypt"], Constraints=stricter)
    for constraints in ({}, {"EncryptionContextSubset": {"app": "b"}}, {"EncryptionContextSubset": {"part": "1"}}):
        looser = functools.partial(bob.create_grant, KeyId=key_id, GranteePrincipal=CAROL, Operations=["Decrypt"],
                                   Constraints=constraints)  # fmt: skip
        assert refused(looser) == "AccessDeniedException"
    grants = admin.list_grants(KeyId=key_id)["Grants"]
    assert len(grants) == 2 and made["GrantId"] in {g["GrantId"] for g in grants}
