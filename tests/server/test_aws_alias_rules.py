"""AWS's alias rules, UpdateAlias and ReEncrypt through boto3 against a real kubekms server.

``app`` may use every operation but only the key aliased ``app-key`` (the principals file's key
list, under the default key policy): ReEncrypt and UpdateAlias must authorise both of their keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import botocore.exceptions
import pytest
from aws_policy_support import boto_kms, refused

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    app = Principal("app", keys=("app-key",))
    with kms_server(tmp_path_factory.mktemp("kms-aliases"), principals=(app,), project_id="default") as running:
        yield running


@pytest.fixture(scope="module")
def admin(server: KMSServer) -> Any:
    return boto_kms(server)


def new_key(kms: Any) -> str:
    return str(kms.create_key()["KeyMetadata"]["KeyId"])


def code_of(call: Any, **fields: Any) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call(**fields)
    return refused(raised)[0]


def test_update_alias_moves_the_alias_and_refuses_an_alias_as_target(admin: Any) -> None:
    first, second = new_key(admin), new_key(admin)
    admin.create_alias(AliasName="alias/orders", TargetKeyId=first)
    admin.update_alias(AliasName="alias/orders", TargetKeyId=second)
    assert admin.describe_key(KeyId="alias/orders")["KeyMetadata"]["KeyId"] == second
    assert admin.encrypt(KeyId="alias/orders", Plaintext=b"x")["KeyId"].endswith(second)
    admin.create_alias(AliasName="alias/other", TargetKeyId=first)
    assert code_of(admin.update_alias, AliasName="alias/orders", TargetKeyId="alias/other") == "NotFoundException"
    assert code_of(admin.update_alias, AliasName="alias/absent", TargetKeyId=first) == "NotFoundException"
    assert code_of(admin.create_alias, AliasName="alias/third", TargetKeyId="alias/other") == "NotFoundException"
    assert admin.describe_key(KeyId="alias/orders")["KeyMetadata"]["KeyId"] == second  # unchanged by refusals


def test_alias_names_follow_aws(admin: Any) -> None:
    key_id = new_key(admin)
    for name in ("alias/aws/mine", "alias/aws/"):
        assert code_of(admin.create_alias, AliasName=name, TargetKeyId=key_id) == "NotAuthorizedException"
    assert code_of(admin.update_alias, AliasName="alias/aws/x", TargetKeyId=key_id) == "NotAuthorizedException"
    for name in ("alias/has space", "alias/colon:name", "alias/dot.name"):
        assert code_of(admin.create_alias, AliasName=name, TargetKeyId=key_id) == "ValidationException"
    admin.create_alias(AliasName="alias/team_a/app-1", TargetKeyId=key_id)


def test_key_only_operations_refuse_aliases(admin: Any) -> None:
    key_id = new_key(admin)
    admin.create_alias(AliasName="alias/rotating", TargetKeyId=key_id)
    arn = admin.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]
    for call in (admin.enable_key_rotation, admin.get_key_rotation_status, admin.disable_key, admin.get_key_policy):
        assert code_of(call, KeyId="alias/rotating") == "NotFoundException"
    admin.enable_key_rotation(KeyId=arn)  # a key ARN is a key
    assert admin.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True


def test_re_encrypt_moves_a_ciphertext_to_another_key_and_context(admin: Any) -> None:
    source, destination = new_key(admin), new_key(admin)
    blob = admin.encrypt(KeyId=source, Plaintext=b"payroll", EncryptionContext={"app": "a"})["CiphertextBlob"]
    moved = admin.re_encrypt(
        CiphertextBlob=blob,
        SourceEncryptionContext={"app": "a"},
        DestinationKeyId=destination,
        DestinationEncryptionContext={"app": "b"},
    )
    assert moved["SourceKeyId"].endswith(source) and moved["KeyId"].endswith(destination)
    opened = admin.decrypt(CiphertextBlob=moved["CiphertextBlob"], EncryptionContext={"app": "b"})
    assert opened["Plaintext"] == b"payroll" and opened["KeyId"].endswith(destination)
    wrong_context = {"CiphertextBlob": blob, "SourceEncryptionContext": {"app": "z"}, "DestinationKeyId": destination}
    assert code_of(admin.re_encrypt, **wrong_context) == "InvalidCiphertextException"
    wrong_source = {"CiphertextBlob": blob, "SourceKeyId": destination, "DestinationKeyId": destination}
    assert code_of(admin.re_encrypt, **wrong_source) == "IncorrectKeyException"


def test_re_encrypt_and_update_alias_authorise_both_keys(server: KMSServer, admin: Any) -> None:
    app_key, other = new_key(admin), new_key(admin)
    admin.create_alias(AliasName="alias/app-key", TargetKeyId=app_key)
    app = boto_kms(server, "app")
    mine = app.encrypt(KeyId="alias/app-key", Plaintext=b"x")["CiphertextBlob"]
    theirs = admin.encrypt(KeyId=other, Plaintext=b"x")["CiphertextBlob"]
    assert code_of(app.re_encrypt, CiphertextBlob=mine, DestinationKeyId=other) == "AccessDeniedException"
    assert code_of(app.re_encrypt, CiphertextBlob=theirs, DestinationKeyId=app_key) == "AccessDeniedException"
    assert app.re_encrypt(CiphertextBlob=mine, DestinationKeyId=app_key)["KeyId"].endswith(app_key)
    admin.create_alias(AliasName="alias/shared", TargetKeyId=other)
    assert code_of(app.update_alias, AliasName="alias/app-key", TargetKeyId=other) == "AccessDeniedException"
    assert admin.describe_key(KeyId="alias/app-key")["KeyMetadata"]["KeyId"] == app_key
