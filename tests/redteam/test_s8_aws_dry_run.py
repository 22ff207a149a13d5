"""DryRun on the AWS wire (999bb3e), attacked: a dry run must never do what the real call would not be allowed
to, nor tell a caller more than the real call would (which keys exist, which grants, whether a ciphertext is
good), nor have an effect. ``bob`` may use only the key aliased ``own``; ``other`` is a key he may not use.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import botocore.exceptions
import pytest

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server

ACTIONS = ("encrypt-datakey", "decrypt-datakey", "describe-key", "create-datakey", "re-encrypt", "create-grant",
           "revoke-grant", "retire-grant", "list-grants")  # fmt: skip
BOB, CAROL = "arn:aws:iam::default:user/bob", "arn:aws:iam::default:user/carol"
DRY_RUN = "DryRunOperationException"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    principals = (Principal("bob", actions=ACTIONS, keys=("own",)), Principal("carol", actions=ACTIONS, keys=("own",)))
    with kms_server(tmp_path_factory.mktemp("kms"), principals=principals, project_id="default") as running:
        yield running


@pytest.fixture(scope="module")
def keys(server: KMSServer) -> dict[str, str]:
    admin = server.aws_client()
    own, other = (admin.create_key()["KeyMetadata"]["KeyId"] for _ in range(2))
    admin.create_alias(AliasName="alias/own", TargetKeyId=own)
    return {"own": own, "other": other}


def _error(call: Callable[[], object]) -> tuple[str, int, Any]:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call()
    response = raised.value.response
    return str(response["Error"]["Code"]), response["ResponseMetadata"]["HTTPStatusCode"], response


def test_a_dry_run_on_a_key_the_caller_may_not_use_is_access_denied(server: KMSServer, keys: dict[str, str]) -> None:
    admin, bob = server.aws_client(), server.aws_client("bob")
    secret = admin.encrypt(KeyId=keys["other"], Plaintext=b"other's")["CiphertextBlob"]
    calls = {
        "Encrypt": functools.partial(bob.encrypt, KeyId=keys["other"], Plaintext=b"x", DryRun=True),
        "GenerateDataKey": functools.partial(
            bob.generate_data_key, KeyId=keys["other"], KeySpec="AES_256", DryRun=True
        ),
        "Decrypt": functools.partial(bob.decrypt, CiphertextBlob=secret, DryRun=True),
        "Decrypt IGNORE_CIPHERTEXT": functools.partial(
            bob.decrypt,
            CiphertextBlob=b"\0" * 64,
            KeyId=keys["other"],
            DryRun=True,
            DryRunModifiers=["IGNORE_CIPHERTEXT"],
        ),
        "ReEncrypt to other": functools.partial(
            bob.re_encrypt,
            CiphertextBlob=b"\0" * 64,
            SourceKeyId=keys["own"],
            DestinationKeyId=keys["other"],
            DryRun=True,
            DryRunModifiers=["IGNORE_CIPHERTEXT"],
        ),
        "CreateGrant": functools.partial(
            bob.create_grant, KeyId=keys["other"], GranteePrincipal=BOB, Operations=["Decrypt"], DryRun=True
        ),
        "RevokeGrant": functools.partial(bob.revoke_grant, KeyId=keys["other"], GrantId="0" * 64, DryRun=True),
    }
    for name, call in calls.items():
        code, status, _ = _error(call)
        assert (code, status) == ("AccessDeniedException", 400), name


def test_a_dry_run_decrypt_of_a_bad_ciphertext_says_what_the_real_call_says(
    server: KMSServer, keys: dict[str, str]
) -> None:
    bob = server.aws_client("bob")
    good = bob.encrypt(KeyId="alias/own", Plaintext=b"bob's")["CiphertextBlob"]
    tampered = good[:-1] + bytes([good[-1] ^ 1])
    assert _error(lambda: bob.decrypt(CiphertextBlob=good, DryRun=True))[0] == DRY_RUN
    real = _error(lambda: bob.decrypt(CiphertextBlob=tampered))[0]
    assert _error(lambda: bob.decrypt(CiphertextBlob=tampered, DryRun=True))[0] == real
    # IGNORE_CIPHERTEXT checks the permission only: a good and a bad ciphertext are one answer
    ignored = functools.partial(bob.decrypt, KeyId=keys["own"], DryRun=True, DryRunModifiers=["IGNORE_CIPHERTEXT"])
    assert _error(lambda: ignored(CiphertextBlob=good))[0] == DRY_RUN
    assert _error(lambda: ignored(CiphertextBlob=tampered))[0] == DRY_RUN


def test_a_dry_run_answers_no_secret_and_makes_no_grant(server: KMSServer, keys: dict[str, str]) -> None:
    admin, bob = server.aws_client(), server.aws_client("bob")
    code, status, response = _error(lambda: bob.generate_data_key(KeyId="alias/own", KeySpec="AES_256", DryRun=True))
    assert (code, status) == (DRY_RUN, 412)
    assert not {"Plaintext", "CiphertextBlob"} & set(response), response
    before = admin.list_grants(KeyId=keys["own"])["Grants"]
    assert _error(lambda: bob.create_grant(KeyId=keys["own"], GranteePrincipal=CAROL, Operations=["Decrypt"],
                                           DryRun=True))[0] == DRY_RUN  # fmt: skip
    assert admin.list_grants(KeyId=keys["own"])["Grants"] == before
    grant = admin.create_grant(KeyId=keys["own"], GranteePrincipal=CAROL, Operations=["Decrypt"],
                               RetiringPrincipal=CAROL)  # fmt: skip
    assert _error(lambda: bob.revoke_grant(KeyId=keys["own"], GrantId=grant["GrantId"], DryRun=True))[0] == DRY_RUN
    carol = server.aws_client("carol")
    assert _error(lambda: carol.retire_grant(GrantToken=grant["GrantToken"], DryRun=True))[0] == DRY_RUN
    assert grant["GrantId"] in {g["GrantId"] for g in admin.list_grants(KeyId=keys["own"])["Grants"]}


def test_a_dry_run_revoke_of_an_unknown_grant_is_what_the_real_call_says(
    server: KMSServer, keys: dict[str, str]
) -> None:
    bob = server.aws_client("bob")
    real = _error(lambda: bob.revoke_grant(KeyId=keys["own"], GrantId="f" * 64))[0]
    assert _error(lambda: bob.revoke_grant(KeyId=keys["own"], GrantId="f" * 64, DryRun=True))[0] == real
