"""Grants through boto3 against a real kubekms server: effective at once, constrained, revoked and retired at once,
kept across a restart, audited; a key policy Deny still wins.

``scoped`` may call every operation but on no key of its own (the principals file's key list): only a grant
lets it use a key. ``retirer`` likewise, and is only ever a retiring principal.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import botocore.exceptions
import pytest
from aws_policy_support import account_root, boto_kms, policy, refused, user

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server
from kubekms.devenv.processes import wait_for

SCOPED_ARN = "arn:aws:iam::default:user/scoped"
RETIRER_ARN = "arn:aws:iam::default:user/retirer"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    principals = (Principal("scoped", keys=("none",)), Principal("retirer", keys=("none",)))
    with kms_server(tmp_path_factory.mktemp("kms-grants"), principals=principals, project_id="default") as running:
        yield running


def revoke_audited(server: KMSServer) -> list[str]:
    """The audit log's lines once it holds a RevokeGrant (it is written in batches), else [] (wait_for retries)."""
    lines = server.audit_log.read_text().splitlines()
    return lines if any('"aws:RevokeGrant"' in line for line in lines) else []


def denied(call: Any, **fields: Any) -> bool:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call(**fields)
    return refused(raised)[0] == "AccessDeniedException"


def test_a_grant_allows_its_operations_under_its_constraint_until_revoked(server: KMSServer) -> None:
    admin, scoped = boto_kms(server), boto_kms(server, "scoped")
    key_id = admin.create_key()["KeyMetadata"]["KeyId"]
    blue = {"tenant": "blue", "app": "orders"}
    assert denied(scoped.encrypt, KeyId=key_id, Plaintext=b"x", EncryptionContext=blue)
    made = admin.create_grant(
        KeyId=key_id,
        GranteePrincipal=SCOPED_ARN,
        Operations=["Encrypt", "Decrypt"],
        Constraints={"EncryptionContextSubset": {"tenant": "blue"}},
        Name="orders-blue",
    )
    sealed = scoped.encrypt(KeyId=key_id, Plaintext=b"x", EncryptionContext=blue, GrantTokens=[made["GrantToken"]])
    opened = scoped.decrypt(CiphertextBlob=sealed["CiphertextBlob"], EncryptionContext=blue)
    assert opened["Plaintext"] == b"x"
    assert denied(scoped.encrypt, KeyId=key_id, Plaintext=b"x", EncryptionContext={"tenant": "red"})
    assert denied(scoped.generate_data_key, KeyId=key_id, KeySpec="AES_256", EncryptionContext=blue)  # not granted

    (listed,) = admin.list_grants(KeyId=key_id)["Grants"]
    assert listed["GrantId"] == made["GrantId"] and listed["Name"] == "orders-blue"
    assert listed["GranteePrincipal"] == SCOPED_ARN and listed["Operations"] == ["Encrypt", "Decrypt"]
    assert listed["Constraints"] == {"EncryptionContextSubset": {"tenant": "blue"}}

    admin.revoke_grant(KeyId=key_id, GrantId=made["GrantId"])
    assert denied(scoped.encrypt, KeyId=key_id, Plaintext=b"x", EncryptionContext=blue)  # at once
    for tokens in ([made["GrantToken"]], ["never-issued"]):
        with pytest.raises(admin.exceptions.InvalidGrantTokenException):
            admin.encrypt(KeyId=key_id, Plaintext=b"x", EncryptionContext=blue, GrantTokens=tokens)
    assert admin.list_grants(KeyId=key_id)["Grants"] == []
    audited = [json.loads(line) for line in wait_for(lambda: revoke_audited(server), 10, "RevokeGrant audited")]
    assert {"aws:CreateGrant", "aws:RevokeGrant"} <= {e["operation"] for e in audited if e["key_id"] == key_id}


def test_a_retiring_principal_retires_by_token_and_grants_survive_a_restart(server: KMSServer) -> None:
    admin = boto_kms(server)
    key_id = admin.create_key()["KeyMetadata"]["KeyId"]
    made = admin.create_grant(
        KeyId=key_id, GranteePrincipal=SCOPED_ARN, RetiringPrincipal=RETIRER_ARN, Operations=["GenerateDataKey"]
    )
    server.stop()
    server.start()
    scoped, retirer = boto_kms(server, "scoped"), boto_kms(server, "retirer")
    assert len(scoped.generate_data_key(KeyId=key_id, KeySpec="AES_256")["Plaintext"]) == 32  # kept across a restart
    retirable = retirer.list_retirable_grants(RetiringPrincipal=RETIRER_ARN)["Grants"]
    assert [grant["GrantId"] for grant in retirable] == [made["GrantId"]]
    assert denied(scoped.retire_grant, GrantToken=made["GrantToken"])  # the grantee was not given RetireGrant
    retirer.retire_grant(GrantToken=made["GrantToken"])
    assert denied(scoped.generate_data_key, KeyId=key_id, KeySpec="AES_256")
    with pytest.raises(retirer.exceptions.NotFoundException):
        retirer.retire_grant(GrantToken=made["GrantToken"])


def test_a_key_policy_deny_beats_a_grant_and_bad_grants_are_refused(server: KMSServer) -> None:
    admin, scoped = boto_kms(server), boto_kms(server, "scoped")
    key_id = admin.create_key()["KeyMetadata"]["KeyId"]
    admin.create_grant(KeyId=key_id, GranteePrincipal=SCOPED_ARN, Operations=["Encrypt"])
    scoped.encrypt(KeyId=key_id, Plaintext=b"x")
    deny = {"Effect": "Deny", "Principal": user("scoped"), "Action": "kms:Encrypt", "Resource": "*"}
    admin.put_key_policy(KeyId=key_id, Policy=policy(account_root(), deny))
    assert denied(scoped.encrypt, KeyId=key_id, Plaintext=b"x")
    for fields, needle in (
        ({"Operations": ["DeriveSharedSecret"]}, "grant operations must be among"),
        ({"GranteePrincipal": "scoped"}, "IAM principal ARN"),
        ({"Constraints": {"EncryptionContextEquals": {"a": "1"}, "EncryptionContextSubset": {"a": "1"}}}, "not both"),
    ):
        request = {"KeyId": key_id, "GranteePrincipal": SCOPED_ARN, "Operations": ["Encrypt"], **fields}
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            admin.create_grant(**request)
        code, message = refused(raised)
        assert code == "ValidationException" and needle in message
    assert len(admin.list_grants(KeyId=key_id)["Grants"]) == 1
    assert json.loads(admin.get_key_policy(KeyId=key_id)["Policy"])["Statement"][1] == deny
