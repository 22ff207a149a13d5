"""boto3 against the kubekms server's AWS KMS endpoint: lifecycle, data keys, AWS exception classes, both wires."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import botocore.exceptions
import pytest
import yaml
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from huaweicloudsdkkms.v2 import (
    CreateDatakeyRequest,
    CreateDatakeyRequestBody,
    CreateKeyRequest,
    CreateKeyRequestBody,
    DecryptDatakeyRequest,
    DecryptDatakeyRequestBody,
    ListKeyDetailRequest,
    OperateKeyRequestBody,
)

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server

REGION = "eu-central-1"
APP_ALIAS = "aws-app"


def kms_client(
    server: KMSServer, principal: str = "admin", secret_key: str | None = None, *, validate: bool = True
) -> Any:
    """``validate=False`` turns off botocore's client-side checks so that the server's own are tested."""
    credentials = yaml.safe_load(server.credentials_file(principal).read_text())
    return boto3.client(
        "kms",
        endpoint_url=server.endpoint,
        region_name=REGION,
        aws_access_key_id=credentials["access_key"],
        aws_secret_access_key=secret_key or credentials["secret_key"],
        config=botocore.config.Config(retries={"mode": "standard", "max_attempts": 1}, parameter_validation=validate),
    )


@pytest.fixture(scope="module")
def aws_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    app = Principal("app", actions=("create-datakey", "decrypt-datakey"), keys=(APP_ALIAS,), projects=("default",))
    with kms_server(tmp_path_factory.mktemp("kms-aws"), principals=(app,), project_id="default") as running:
        yield running


@pytest.fixture(scope="module")
def kms(aws_server: KMSServer) -> Any:
    return kms_client(aws_server)


def new_key(kms: Any, **kwargs: Any) -> str:
    return str(kms.create_key(**kwargs)["KeyMetadata"]["KeyId"])


def error_code(raised: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> str:
    return str(raised.value.response["Error"]["Code"])


def test_whole_lifecycle(aws_server: KMSServer, kms: Any) -> None:
    created = kms.create_key(Description="orders", Tags=[{"TagKey": "team", "TagValue": "payments"}])["KeyMetadata"]
    key_id = created["KeyId"]
    assert created["Arn"] == f"arn:aws:kms:{REGION}:default:key/{key_id}"
    assert created["KeyState"] == "Enabled" and created["Enabled"] is True
    assert created["KeySpec"] == "SYMMETRIC_DEFAULT" and created["KeyManager"] == "CUSTOMER"

    described = kms.describe_key(KeyId=created["Arn"])["KeyMetadata"]
    assert described["KeyId"] == key_id and described["Description"] == "orders"
    listed = [entry["KeyId"] for entry in kms.get_paginator("list_keys").paginate().build_full_result()["Keys"]]
    assert key_id in listed

    kms.disable_key(KeyId=key_id)
    kms.disable_key(KeyId=key_id)  # idempotent, as on AWS
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Disabled"
    with pytest.raises(kms.exceptions.DisabledException):
        kms.encrypt(KeyId=key_id, Plaintext=b"secret")
    with pytest.raises(kms.exceptions.DisabledException):
        kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    kms.enable_key(KeyId=key_id)
    kms.enable_key(KeyId=key_id)
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["Enabled"] is True

    unchecked = kms_client(aws_server, validate=False)
    for bad_window in (6, 31, 0, -1):
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            unchecked.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=bad_window)
        assert error_code(raised) == "ValidationException"
    assert kms.describe_key(KeyId=key_id)["KeyMetadata"]["KeyState"] == "Enabled"  # no partial write

    scheduled = kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    assert scheduled["KeyState"] == "PendingDeletion" and scheduled["PendingWindowInDays"] == 7
    expected = datetime.now(UTC) + timedelta(days=7)
    assert abs(scheduled["DeletionDate"] - expected) < timedelta(minutes=5)
    with pytest.raises(kms.exceptions.KMSInvalidStateException):
        kms.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
    with pytest.raises(kms.exceptions.KMSInvalidStateException):
        kms.generate_data_key(KeyId=key_id, NumberOfBytes=32)

    kms.cancel_key_deletion(KeyId=key_id)
    after_cancel = kms.describe_key(KeyId=key_id)["KeyMetadata"]
    assert after_cancel["KeyState"] == "Disabled" and "DeletionDate" not in after_cancel
    with pytest.raises(kms.exceptions.KMSInvalidStateException):
        kms.cancel_key_deletion(KeyId=key_id)


def test_rotation(aws_server: KMSServer, kms: Any) -> None:
    key_id = new_key(kms)
    unchecked = kms_client(aws_server, validate=False)
    for bad_period in (89, 2561, 0):
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            unchecked.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=bad_period)
        assert error_code(raised) == "ValidationException"
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False

    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)
    status = kms.get_key_rotation_status(KeyId=key_id)
    assert status["KeyRotationEnabled"] is True and status["RotationPeriodInDays"] == 90

    before = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    kms.rotate_key_on_demand(KeyId=key_id)
    kms.rotate_key_on_demand(KeyId=key_id)
    assert len(kms.list_key_rotations(KeyId=key_id)["Rotations"]) == 2
    # old versions keep decrypting
    assert kms.decrypt(CiphertextBlob=before["CiphertextBlob"])["Plaintext"] == before["Plaintext"]

    kms.disable_key_rotation(KeyId=key_id)
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is False
    kms.disable_key(KeyId=key_id)
    with pytest.raises(kms.exceptions.DisabledException):
        kms.enable_key_rotation(KeyId=key_id)
    with pytest.raises(kms.exceptions.DisabledException):
        kms.rotate_key_on_demand(KeyId=key_id)


def test_data_keys_and_encryption_context(kms: Any) -> None:
    key_id = new_key(kms)
    context = {"tenant": "a", "purpose": "orders"}
    data_key = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256", EncryptionContext=context)
    assert len(data_key["Plaintext"]) == 32 and data_key["KeyId"].endswith(key_id)
    assert len(kms.generate_data_key(KeyId=key_id, KeySpec="AES_128")["Plaintext"]) == 16
    assert len(kms.generate_data_key(KeyId=key_id, NumberOfBytes=64)["Plaintext"]) == 64
    # the context binds, in any key order; the KeyId is optional for symmetric Decrypt
    reordered = {"purpose": "orders", "tenant": "a"}
    assert (
        kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"], EncryptionContext=reordered)["Plaintext"]
        == (data_key["Plaintext"])
    )
    for wrong in ({"tenant": "b", "purpose": "orders"}, {}):
        with pytest.raises(kms.exceptions.InvalidCiphertextException):
            kms.decrypt(CiphertextBlob=data_key["CiphertextBlob"], EncryptionContext=wrong)

    without = kms.generate_data_key_without_plaintext(KeyId=key_id, NumberOfBytes=32)
    assert "Plaintext" not in without
    assert len(kms.decrypt(CiphertextBlob=without["CiphertextBlob"], KeyId=key_id)["Plaintext"]) == 32

    plaintext = bytes(range(256)) * 16  # 4096 bytes, AWS's Encrypt maximum
    sealed = kms.encrypt(KeyId=key_id, Plaintext=plaintext, EncryptionContext=context)
    assert sealed["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
    opened = kms.decrypt(CiphertextBlob=sealed["CiphertextBlob"], EncryptionContext=context, KeyId=key_id)
    assert opened["Plaintext"] == plaintext and opened["KeyId"].endswith(key_id)

    tampered = bytearray(sealed["CiphertextBlob"])
    tampered[-1] ^= 1
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(CiphertextBlob=bytes(tampered), EncryptionContext=context)
    with pytest.raises(kms.exceptions.InvalidCiphertextException):
        kms.decrypt(CiphertextBlob=b"not a ciphertext at all")
    other_key = new_key(kms)
    with pytest.raises(kms.exceptions.IncorrectKeyException):
        kms.decrypt(CiphertextBlob=sealed["CiphertextBlob"], EncryptionContext=context, KeyId=other_key)

    for bad in ({"NumberOfBytes": 1025}, {"NumberOfBytes": 32, "KeySpec": "AES_256"}, {}):
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            kms.generate_data_key(KeyId=key_id, **bad)
        assert error_code(raised) == "ValidationException"
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        kms.encrypt(KeyId=key_id, Plaintext=plaintext + b"x")
    assert error_code(raised) == "ValidationException"


def test_generate_random(kms: Any) -> None:
    first, second = (kms.generate_random(NumberOfBytes=1024)["Plaintext"] for _ in range(2))
    assert len(first) == 1024 and first != second
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        kms.generate_random(NumberOfBytes=1025)
    assert error_code(raised) == "ValidationException"


def test_aliases_and_tags(kms: Any) -> None:
    key_id = new_key(kms)
    kms.create_alias(AliasName="alias/orders-db", TargetKeyId=key_id)
    assert kms.describe_key(KeyId="alias/orders-db")["KeyMetadata"]["KeyId"] == key_id
    names = [entry["AliasName"] for entry in kms.list_aliases(KeyId=key_id)["Aliases"]]
    assert names == ["alias/orders-db"]
    everything = kms.get_paginator("list_aliases").paginate().build_full_result()["Aliases"]
    assert {"alias/orders-db": key_id}.items() <= {e["AliasName"]: e["TargetKeyId"] for e in everything}.items()
    with pytest.raises(kms.exceptions.AlreadyExistsException):
        kms.create_alias(AliasName="alias/orders-db", TargetKeyId=new_key(kms))
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        kms.create_alias(AliasName="alias/aws/reserved", TargetKeyId=key_id)
    assert error_code(raised) == "NotAuthorizedException"  # AWS reserves alias/aws/
    kms.delete_alias(AliasName="alias/orders-db")
    with pytest.raises(kms.exceptions.NotFoundException):
        kms.describe_key(KeyId="alias/orders-db")

    kms.tag_resource(KeyId=key_id, Tags=[{"TagKey": "env", "TagValue": "prod"}, {"TagKey": "team", "TagValue": "a"}])
    kms.untag_resource(KeyId=key_id, TagKeys=["team"])
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "env", "TagValue": "prod"}]


def test_error_classes(aws_server: KMSServer, kms: Any) -> None:
    with pytest.raises(kms.exceptions.NotFoundException):
        kms.describe_key(KeyId="11111111-2222-3333-4444-555555555555")
    with pytest.raises(kms.exceptions.NotFoundException):
        kms.generate_data_key(KeyId="alias/no-such-alias", KeySpec="AES_256")
    with pytest.raises(botocore.exceptions.ClientError) as raised:  # an ARN of another account (project): AWS's
        kms.describe_key(KeyId=f"arn:aws:kms:{REGION}:other:key/{new_key(kms)}")  # answer when no policy lets it in
    assert error_code(raised) == "AccessDeniedException"

    forged = kms_client(aws_server, secret_key="not-the-secret")
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        forged.list_keys()
    assert error_code(raised) == "InvalidSignatureException"
    stranger = boto3.client(
        "kms",
        endpoint_url=aws_server.endpoint,
        region_name=REGION,
        aws_access_key_id="AKNOBODY",
        aws_secret_access_key="whatever",
    )
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        stranger.list_keys()
    assert error_code(raised) == "UnrecognizedClientException"


def test_least_privilege_principal(aws_server: KMSServer, kms: Any) -> None:
    app_key = new_key(kms)
    kms.create_alias(AliasName=f"alias/{APP_ALIAS}", TargetKeyId=app_key)
    other_key = new_key(kms)
    app = kms_client(aws_server, "app")

    data_key = app.generate_data_key(KeyId=f"alias/{APP_ALIAS}", KeySpec="AES_256")
    assert app.decrypt(CiphertextBlob=data_key["CiphertextBlob"])["Plaintext"] == data_key["Plaintext"]
    assert app.generate_data_key(KeyId=app_key, KeySpec="AES_256")["KeyId"].endswith(app_key)  # by id too
    foreign = kms.generate_data_key(KeyId=other_key, KeySpec="AES_256")["CiphertextBlob"]
    denied = (
        lambda: app.generate_data_key(KeyId=other_key, KeySpec="AES_256"),
        lambda: app.disable_key(KeyId=app_key),
        lambda: app.list_keys(),
        lambda: app.decrypt(CiphertextBlob=foreign),  # the ciphertext names a key the app may not use
    )
    for call in denied:
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            call()
        assert error_code(raised) == "AccessDeniedException"  # botocore models no class for it
    assert kms.describe_key(KeyId=app_key)["KeyMetadata"]["KeyState"] == "Enabled"


def test_keys_cross_both_wires(aws_server: KMSServer, kms: Any, sdk_client: Any) -> None:
    huawei = sdk_client(aws_server, project_id="default")
    # made on the v1.0 wire, used on the AWS wire by its alias
    body = CreateKeyRequestBody(key_alias="made-on-v1", key_description="v1 key")
    v1_key = huawei.create_key(CreateKeyRequest(body=body)).key_info.key_id
    described = kms.describe_key(KeyId="alias/made-on-v1")["KeyMetadata"]
    assert described["KeyId"] == v1_key and described["Description"] == "v1 key"
    context = {"app": "x"}
    aws_data_key = kms.generate_data_key(KeyId="alias/made-on-v1", KeySpec="AES_256", EncryptionContext=context)
    # the same canonical context bytes as additional data on the v1.0 wire
    decrypted = huawei.decrypt_datakey(
        DecryptDatakeyRequest(
            body=DecryptDatakeyRequestBody(
                key_id=v1_key,
                cipher_text=aws_data_key["CiphertextBlob"].hex(),
                datakey_cipher_length="32",
                additional_authenticated_data=json.dumps(context, separators=(",", ":")),
            )
        )
    )
    assert bytes.fromhex(decrypted.data_key) == aws_data_key["Plaintext"]

    # made on the AWS wire, used on the v1.0 wire
    aws_key = new_key(kms, Description="aws key")
    kms.create_alias(AliasName="alias/made-on-aws", TargetKeyId=aws_key)
    shown = huawei.list_key_detail(ListKeyDetailRequest(body=OperateKeyRequestBody(key_id="made-on-aws"))).key_info
    assert shown.key_id == aws_key and shown.key_description == "aws key"
    v1_data_key = huawei.create_datakey(
        CreateDatakeyRequest(body=CreateDatakeyRequestBody(key_id=aws_key, datakey_length="256"))
    )
    opened = kms.decrypt(CiphertextBlob=bytes.fromhex(v1_data_key.cipher_text), KeyId="alias/made-on-aws")
    assert opened["Plaintext"] == bytes.fromhex(v1_data_key.plain_text)


def test_audit_and_no_key_material(aws_server: KMSServer, kms: Any) -> None:
    key_id = new_key(kms)
    data_key = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    audit_path = Path(aws_server.audit_log)

    def audited() -> list[dict[str, Any]]:
        return [json.loads(line) for line in audit_path.read_text().splitlines() if line]

    deadline = datetime.now(UTC) + timedelta(seconds=10)
    while not any(e["operation"] == "aws:GenerateDataKey" and e["key_id"] == key_id for e in audited()):
        assert datetime.now(UTC) < deadline, "GenerateDataKey never reached the audit log"
        time.sleep(0.05)  # polling interval of a condition with a deadline
    with urllib.request.urlopen(f"{aws_server.endpoint}/metrics", timeout=5) as answer:
        metrics = answer.read().decode()
    assert 'kubekms_server_requests_total{code="OK",operation="aws:GenerateDataKey"}' in metrics
    texts = audit_path.read_text() + Path(aws_server.log).read_text()
    for secret in (data_key["Plaintext"], data_key["CiphertextBlob"]):
        assert base64.b64encode(secret).decode() not in texts and secret.hex() not in texts


def raw_call(server: KMSServer, target: str | None, body: bytes) -> tuple[int, dict[str, Any]]:
    """A SigV4-signed POST / with any body: what boto3's own validation never lets through."""
    credentials = yaml.safe_load(server.credentials_file("admin").read_text())
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    if target is not None:
        headers["X-Amz-Target"] = target
    request = AWSRequest(method="POST", url=server.endpoint + "/", data=body, headers=headers)
    SigV4Auth(BotoCredentials(credentials["access_key"], credentials["secret_key"]), "kms", REGION).add_auth(request)
    sent = urllib.request.Request(server.endpoint + "/", data=body, headers=dict(request.headers.items()))
    try:
        with urllib.request.urlopen(sent, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.parametrize(
    ("target", "body", "error_type", "needle"),
    [
        ("TrentService.GenerateDataKey", b"{not json", "SerializationException", "not valid JSON"),
        ("TrentService.GenerateDataKey", b"[1, 2]", "SerializationException", "JSON object"),
        ("TrentService.GenerateDataKey", b'{"NumberOfBytes": 32}', "ValidationException", "'KeyId' must not be null"),
        ("TrentService.GenerateDataKey", b'{"KeyId": 7, "NumberOfBytes": 32}', "ValidationException", "be a string"),
        ("TrentService.GenerateRandom", b'{"NumberOfBytes": "32"}', "ValidationException", "be an integer"),
        ("TrentService.Encrypt", b'{"KeyId": "alias/x", "Plaintext": "***"}', "ValidationException", "base64"),
        ("TrentService.CreateKey", b'{"Tags": [{"TagValue": "v"}]}', "ValidationException", "TagKey"),
        ("TrentService.CreateKey", b'{"KeySpec": "RSA_2048"}', "ValidationException", "SYMMETRIC_DEFAULT"),
        ("TrentService.CreateKey", b'{"Policy": "{}"}', "MalformedPolicyDocumentException", "Version must be"),
        ("TrentService.ReEncrypt", b"{}", "ValidationException", "'CiphertextBlob' must not be null"),
        ("TrentService.ConnectCustomKeyStore", b"{}", "UnknownOperationException", "unknown operation"),
        (None, b"{}", "UnknownOperationException", "unknown operation"),
    ],
)
def test_malformed_requests_get_validation_errors_and_change_nothing(
    aws_server: KMSServer, kms: Any, target: str | None, body: bytes, error_type: str, needle: str
) -> None:
    keys_before = len(kms.get_paginator("list_keys").paginate().build_full_result()["Keys"])
    status, answer = raw_call(aws_server, target, body)
    assert status == 400
    assert answer["__type"] == error_type and needle in answer["message"]
    assert len(kms.get_paginator("list_keys").paginate().build_full_result()["Keys"]) == keys_before


def test_oversized_body_is_refused(aws_server: KMSServer) -> None:
    status, answer = raw_call(aws_server, "TrentService.Encrypt", b'{"Plaintext": "' + b"A" * 70_000 + b'"}')
    assert status == 400 and "larger than" in answer["message"]
