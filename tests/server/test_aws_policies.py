"""Key policies through boto3 against a real kubekms server, with the principals file as AWS's IAM side.

Principals: ``admin`` (everything), ``app`` (every operation, every key: a policy deny must still
win) and ``scoped`` (every operation on no key of its own: only a key policy naming it lets it in).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import botocore.exceptions
import pytest
from aws_policy_support import account_root, boto_kms, policy, refused, user

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server
from kubekms.errors import AccessDenied


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    principals = (Principal("app"), Principal("scoped", keys=("no-such-key",)))
    with kms_server(tmp_path_factory.mktemp("kms-policies"), principals=principals, project_id="default") as running:
        yield running


@pytest.fixture(scope="module")
def admin(server: KMSServer) -> Any:
    return boto_kms(server)


def test_a_new_key_has_the_default_policy_and_keeps_todays_access(server: KMSServer, admin: Any) -> None:
    key_id = admin.create_key()["KeyMetadata"]["KeyId"]
    assert admin.list_key_policies(KeyId=key_id)["PolicyNames"] == ["default"]
    document = json.loads(admin.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    assert document["Statement"] == [{**account_root(), "Sid": "Enable IAM User Permissions"}]
    boto_kms(server, "app").generate_data_key(KeyId=key_id, KeySpec="AES_256")  # the principals file allows it
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        boto_kms(server, "scoped").generate_data_key(KeyId=key_id, KeySpec="AES_256")
    assert refused(raised)[0] == "AccessDeniedException"


def test_a_policy_deny_beats_the_principals_allow_on_both_wires(server: KMSServer, admin: Any) -> None:
    key_id = admin.create_key()["KeyMetadata"]["KeyId"]
    deny = {"Effect": "Deny", "Principal": user("app"), "Action": ["kms:Encrypt", "kms:ReEncrypt*"], "Resource": "*"}
    admin.put_key_policy(KeyId=key_id, PolicyName="default", Policy=policy(account_root(), deny))
    app = boto_kms(server, "app")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        app.encrypt(KeyId=key_id, Plaintext=b"order 1")
    assert refused(raised)[0] == "AccessDeniedException"
    with pytest.raises(AccessDenied):  # the KMS v1.0 wire, through provider kubekms, sees the same policy
        server.call("encrypt_data_key", key_id, b"order 1", principal="app")
    assert app.generate_data_key(KeyId=key_id, KeySpec="AES_256")["KeyId"].endswith(key_id)  # not denied
    admin.encrypt(KeyId=key_id, Plaintext=b"order 1")  # the deny names app only


def test_an_encryption_context_condition_refuses_a_mismatching_call(server: KMSServer, admin: Any) -> None:
    key_id = admin.create_key()["KeyMetadata"]["KeyId"]
    tenant_blue = {
        "Effect": "Allow",
        "Principal": user("scoped"),
        "Action": "kms:GenerateDataKey*",
        "Resource": "*",
        "Condition": {"StringEquals": {"kms:EncryptionContext:tenant": "blue"}},
    }
    admin.put_key_policy(KeyId=key_id, Policy=policy(account_root(), tenant_blue))
    scoped = boto_kms(server, "scoped")
    made = scoped.generate_data_key(KeyId=key_id, KeySpec="AES_256", EncryptionContext={"tenant": "blue"})
    assert len(made["Plaintext"]) == 32  # the policy names scoped: its empty key list does not matter
    for context in ({"tenant": "red"}, {}):
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            scoped.generate_data_key(KeyId=key_id, KeySpec="AES_256", EncryptionContext=context)
        assert refused(raised)[0] == "AccessDeniedException"


def test_a_policy_that_locks_the_caller_out_is_refused_unless_bypassed(server: KMSServer, admin: Any) -> None:
    key_id = admin.create_key()["KeyMetadata"]["KeyId"]
    app_only = policy({"Effect": "Allow", "Principal": user("app"), "Action": "kms:*", "Resource": "*"})
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        admin.put_key_policy(KeyId=key_id, PolicyName="default", Policy=app_only)
    code, message = refused(raised)
    assert code == "MalformedPolicyDocumentException" and "BypassPolicyLockoutSafetyCheck" in message
    keys_before = admin.list_keys()["Keys"]
    with pytest.raises(admin.exceptions.MalformedPolicyDocumentException):
        admin.create_key(Policy=app_only)
    assert admin.list_keys()["Keys"] == keys_before  # a refused policy leaves no key behind

    admin.put_key_policy(KeyId=key_id, Policy=app_only, BypassPolicyLockoutSafetyCheck=True)
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        admin.put_key_policy(KeyId=key_id, Policy=policy(account_root()))
    assert refused(raised)[0] == "AccessDeniedException"  # locked out, as AWS warns
    boto_kms(server, "app").put_key_policy(KeyId=key_id, Policy=policy(account_root()))  # app may restore it
    admin.encrypt(KeyId=key_id, Plaintext=b"x")


def test_create_key_with_a_policy_and_malformed_policies(server: KMSServer, admin: Any) -> None:
    scoped_may_encrypt = {"Effect": "Allow", "Principal": user("scoped"), "Action": "kms:Encrypt", "Resource": "*"}
    key_id = admin.create_key(Policy=policy(account_root(), scoped_may_encrypt))["KeyMetadata"]["KeyId"]
    sealed = boto_kms(server, "scoped").encrypt(KeyId=key_id, Plaintext=b"x")["CiphertextBlob"]
    assert base64.b64encode(sealed)
    with pytest.raises(botocore.exceptions.ClientError):
        boto_kms(server, "scoped").decrypt(CiphertextBlob=sealed)  # Encrypt only
    for document, needle in (
        ("not json", "not valid JSON"),
        (policy({**account_root(), "Effect": "Maybe"}), "Statement[0].Effect"),
        (policy({**account_root(), "NotAction": "kms:Decrypt"}), "NotAction not supported"),
        (policy({**account_root(), "Condition": {"StringEquals": {"aws:SourceIp": "10.0.0.1"}}}), "aws:SourceIp"),
    ):
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            admin.put_key_policy(KeyId=key_id, Policy=document)
        code, message = refused(raised)
        assert code == "MalformedPolicyDocumentException" and needle in message
    assert json.loads(admin.get_key_policy(KeyId=key_id)["Policy"])["Statement"][1] == scoped_may_encrypt
