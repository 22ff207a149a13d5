"""Every AWS operation the server offers, called through boto3 against a real kubekms server, answers a body that
botocore's own model of the operation's output accepts: required members present, no member the model lacks,
JSON types as the model's, enum values and numeric ranges legal. The raw body is checked (boto3's parser drops
members it does not know and would hide them)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aws_policy_support import account_root, boto_kms, policy
from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from kubekms.devenv.kmsserver import kms_server
from kubekms.server.aws_operations import OPERATIONS

JSON_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "blob": (str,), "boolean": (bool,), "integer": (int,),
                                           "long": (int,), "timestamp": (int, float)}  # fmt: skip
Answers = dict[str, list[Any]]  # operation name -> raw JSON bodies of its successful answers


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Answers]]:
    answers: Answers = {}

    def keep(http_response: Any, model: OperationModel, **_: Any) -> None:
        if http_response.status_code == 200:
            answers.setdefault(model.name, []).append(json.loads(http_response.content or b"{}"))

    with kms_server(tmp_path_factory.mktemp("kms-shapes"), project_id="default") as running:
        kms = boto_kms(running)
        kms.meta.events.register("after-call.kms", keep)
        yield kms, answers


def problems(shape: Shape | None, value: Any, where: str) -> list[str]:
    """What in ``value`` the model's ``shape`` (None: the operation answers no output) does not allow."""
    if shape is None:
        return [] if value == {} else [f"{where}: {value!r}, but the model has no output"]
    if isinstance(shape, StructureShape):
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, not an object"]
        found = [f"{where}.{name}: required, missing" for name in shape.required_members if name not in value]
        for name, member in value.items():
            if name not in shape.members:
                found.append(f"{where}.{name}: not in the model")
            else:
                found += problems(shape.members[name], member, f"{where}.{name}")
        return found
    if isinstance(shape, ListShape):
        if not isinstance(value, list):
            return [f"{where}: {type(value).__name__}, not a list"]
        return [problem for i, item in enumerate(value) for problem in problems(shape.member, item, f"{where}[{i}]")]
    if isinstance(shape, MapShape):
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, not a map"]
        return [problem for key, item in value.items() for problem in problems(shape.value, item, f"{where}[{key}]")]
    return _scalar_problems(shape, value, where)


def _scalar_problems(shape: Shape, value: Any, where: str) -> list[str]:
    expected = JSON_TYPES[shape.type_name]
    if not isinstance(value, expected) or (bool not in expected and isinstance(value, bool)):
        return [f"{where}: {value!r} is not a {shape.type_name}"]
    enum = shape.metadata.get("enum")
    if enum and value not in enum:
        return [f"{where}: {value!r} is not one of {enum}"]
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    size = len(value) if isinstance(value, str) else value
    if (
        shape.type_name != "blob"
        and not isinstance(value, bool)
        and ((low is not None and size < low) or (high is not None and size > high))
    ):
        return [f"{where}: {value!r} outside {low}..{high}"]
    return []


def _wrapped(public_der: bytes, material: bytes) -> bytes:
    public = load_der_public_key(public_der)
    assert isinstance(public, rsa.RSAPublicKey)
    return public.encrypt(material, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))


def call_every_operation(kms: Any, unique: Callable[[str], str]) -> None:
    """Each offered operation at least once, on each kind of answer it has (symmetric, RSA, ECC, HMAC keys)."""
    key = kms.create_key(Description="shapes", Tags=[{"TagKey": "team", "TagValue": "a"}])["KeyMetadata"]["KeyId"]
    rsa_key = kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
    ecc_key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    mac_key = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
    for key_id in (key, rsa_key, ecc_key, mac_key):
        kms.describe_key(KeyId=key_id)
        kms.get_key_rotation_status(KeyId=key_id)
    kms.list_keys(Limit=2)
    kms.update_key_description(KeyId=key, Description="shapes 2")
    kms.disable_key(KeyId=key)
    kms.enable_key(KeyId=key)
    kms.enable_key_rotation(KeyId=key, RotationPeriodInDays=120)
    kms.get_key_rotation_status(KeyId=key)
    kms.rotate_key_on_demand(KeyId=key)
    kms.list_key_rotations(KeyId=key, IncludeKeyMaterial="ALL_KEY_MATERIAL")
    kms.disable_key_rotation(KeyId=key)
    kms.generate_random(NumberOfBytes=16)
    kms.generate_data_key(KeyId=key, KeySpec="AES_256")
    kms.generate_data_key_without_plaintext(KeyId=key, NumberOfBytes=32)
    blob = kms.encrypt(KeyId=key, Plaintext=b"m", EncryptionContext={"a": "b"})["CiphertextBlob"]
    kms.decrypt(CiphertextBlob=blob, EncryptionContext={"a": "b"})
    kms.re_encrypt(CiphertextBlob=blob, SourceEncryptionContext={"a": "b"}, DestinationKeyId=key)
    rsa_blob = kms.encrypt(KeyId=rsa_key, Plaintext=b"m", EncryptionAlgorithm="RSAES_OAEP_SHA_256")["CiphertextBlob"]
    kms.decrypt(KeyId=rsa_key, CiphertextBlob=rsa_blob, EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    kms.generate_data_key_pair(KeyId=key, KeyPairSpec="ECC_NIST_P256")
    kms.generate_data_key_pair_without_plaintext(KeyId=key, KeyPairSpec="RSA_2048")
    for key_id in (rsa_key, ecc_key):
        kms.get_public_key(KeyId=key_id)
    signature = kms.sign(KeyId=ecc_key, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    kms.verify(KeyId=ecc_key, Message=b"m", Signature=signature, SigningAlgorithm="ECDSA_SHA_256")
    mac = kms.generate_mac(KeyId=mac_key, Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]
    kms.verify_mac(KeyId=mac_key, Message=b"m", Mac=mac, MacAlgorithm="HMAC_SHA_256")
    external = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
    kms.describe_key(KeyId=external)  # PendingImport: no ValidTo, no algorithms yet
    parameters = kms.get_parameters_for_import(KeyId=external, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                               WrappingKeySpec="RSA_2048")  # fmt: skip
    kms.import_key_material(KeyId=external, ImportToken=parameters["ImportToken"],
                            EncryptedKeyMaterial=_wrapped(parameters["PublicKey"], bytes(range(32))),
                            ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")  # fmt: skip
    kms.describe_key(KeyId=external)
    kms.delete_imported_key_material(KeyId=external)
    alias = f"alias/{unique('shapes')}"
    kms.create_alias(AliasName=alias, TargetKeyId=key)
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.update_alias(AliasName=alias, TargetKeyId=other)
    kms.list_aliases()
    kms.list_aliases(KeyId=other)
    kms.delete_alias(AliasName=alias)
    kms.tag_resource(KeyId=key, Tags=[{"TagKey": "env", "TagValue": "test"}])
    kms.list_resource_tags(KeyId=key)
    kms.untag_resource(KeyId=key, TagKeys=["env"])
    kms.get_key_policy(KeyId=key)
    kms.put_key_policy(KeyId=key, Policy=policy(account_root()))
    kms.get_key_policy(KeyId=key, PolicyName="default")
    kms.list_key_policies(KeyId=key)
    grantee = "arn:aws:iam::default:user/admin"
    subset = {"EncryptionContextSubset": {"a": "b"}}
    grant = kms.create_grant(KeyId=key, GranteePrincipal=grantee, Operations=["Decrypt"], RetiringPrincipal=grantee,
                             Constraints=subset)  # fmt: skip
    kms.list_grants(KeyId=key)
    kms.list_retirable_grants(RetiringPrincipal=grantee)
    kms.retire_grant(GrantToken=grant["GrantToken"])
    second = kms.create_grant(KeyId=key, GranteePrincipal=grantee, Operations=["Encrypt"])
    kms.revoke_grant(KeyId=key, GrantId=second["GrantId"])
    kms.schedule_key_deletion(KeyId=mac_key, PendingWindowInDays=7)
    kms.describe_key(KeyId=mac_key)  # PendingDeletion: DeletionDate
    kms.cancel_key_deletion(KeyId=mac_key)


def test_every_offered_operation_answers_as_botocores_model_says(
    recorded: tuple[Any, Answers], unique: Callable[[str], str]
) -> None:
    kms, answers = recorded
    call_every_operation(kms, unique)
    assert sorted(OPERATIONS) == sorted(answers)  # a new operation gets a call above
    model = kms.meta.service_model
    found = [
        problem
        for name, bodies in answers.items()
        for body in bodies
        for problem in problems(model.operation_model(name).output_shape, body, name)
    ]
    assert found == []
