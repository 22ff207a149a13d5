"""DryRun on the AWS wire, as AWS KMS: a call with ``DryRun: true`` is checked (signature, permissions,
parameters, key state, ciphertext) and then refused with DryRunOperationException (HTTP 412) instead of done.

Every SDK exposes DryRun (boto3 ``DryRun=True``, Go ``DryRun: aws.Bool(true)``, ...). Before, the server ignored
the field and did the call: a dry-run CreateGrant made a grant, RevokeGrant revoked one, GenerateDataKey handed
out a data key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import botocore.exceptions
import pytest

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server

SCOPED_ARN = "arn:aws:iam::default:user/scoped"
CONTEXT = {"app": "dry"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("kms-dry-run"), principals=(Principal("scoped", keys=("none",)),)) as s:
        yield s


@pytest.fixture(scope="module")
def kms(server: KMSServer) -> Any:
    return server.aws_client()


@pytest.fixture(scope="module")
def keys(kms: Any) -> dict[str, str]:
    return {
        "symmetric": kms.create_key()["KeyMetadata"]["KeyId"],
        "other": kms.create_key()["KeyMetadata"]["KeyId"],
        "rsa": kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"],
        "ecc": kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"],
        "hmac": kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"],
    }


def refusal(call: Callable[..., Any], **fields: Any) -> tuple[str, int, dict[str, Any]]:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call(**fields)
    response: dict[str, Any] = raised.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response


def _calls(kms: Any, keys: dict[str, str]) -> dict[str, tuple[Callable[..., Any], dict[str, Any]]]:
    """Each operation that takes DryRun, with fields that succeed without it."""
    symmetric = keys["symmetric"]
    sealed = kms.encrypt(KeyId=symmetric, Plaintext=b"secret", EncryptionContext=CONTEXT)["CiphertextBlob"]
    signature = kms.sign(KeyId=keys["ecc"], Message=b"m", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
    mac = kms.generate_mac(KeyId=keys["hmac"], Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]
    return {
        "Encrypt": (kms.encrypt, {"KeyId": symmetric, "Plaintext": b"x"}),
        "Decrypt": (kms.decrypt, {"CiphertextBlob": sealed, "EncryptionContext": CONTEXT}),
        "ReEncrypt": (
            kms.re_encrypt,
            {"CiphertextBlob": sealed, "SourceEncryptionContext": CONTEXT, "DestinationKeyId": keys["other"]},
        ),
        "GenerateDataKey": (kms.generate_data_key, {"KeyId": symmetric, "KeySpec": "AES_256"}),
        "GenerateDataKeyWithoutPlaintext": (
            kms.generate_data_key_without_plaintext,
            {"KeyId": symmetric, "NumberOfBytes": 16},
        ),
        "GenerateDataKeyPair": (kms.generate_data_key_pair, {"KeyId": symmetric, "KeyPairSpec": "ECC_NIST_P256"}),
        "GenerateDataKeyPairWithoutPlaintext": (
            kms.generate_data_key_pair_without_plaintext,
            {"KeyId": symmetric, "KeyPairSpec": "ECC_NIST_P256"},
        ),
        "Sign": (kms.sign, {"KeyId": keys["ecc"], "Message": b"m", "SigningAlgorithm": "ECDSA_SHA_256"}),
        "Verify": (
            kms.verify,
            {"KeyId": keys["ecc"], "Message": b"m", "Signature": signature, "SigningAlgorithm": "ECDSA_SHA_256"},
        ),
        "GenerateMac": (kms.generate_mac, {"KeyId": keys["hmac"], "Message": b"m", "MacAlgorithm": "HMAC_SHA_256"}),
        "VerifyMac": (
            kms.verify_mac,
            {"KeyId": keys["hmac"], "Message": b"m", "Mac": mac, "MacAlgorithm": "HMAC_SHA_256"},
        ),
        "CreateGrant": (
            kms.create_grant,
            {"KeyId": symmetric, "GranteePrincipal": SCOPED_ARN, "Operations": ["Encrypt"]},
        ),
    }


OPERATIONS = [
    "Encrypt",
    "Decrypt",
    "ReEncrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "Sign",
    "Verify",
    "GenerateMac",
    "VerifyMac",
    "CreateGrant",
]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_dry_run_that_would_succeed_is_refused_with_dry_run_operation(
    kms: Any, keys: dict[str, str], operation: str
) -> None:
    call, fields = _calls(kms, keys)[operation]
    call(**fields)  # succeeds without DryRun
    code, status, response = refusal(call, DryRun=True, **fields)
    assert (code, status) == ("DryRunOperationException", 412)
    assert set(response) == {"Error", "ResponseMetadata", "message"}  # no Plaintext, CiphertextBlob, GrantToken...
    call(DryRun=False, **fields)  # DryRun false: done as usual


def test_a_dry_run_makes_revokes_and_retires_no_grant(kms: Any, keys: dict[str, str]) -> None:
    key_id = keys["other"]

    def grant_ids() -> list[str]:
        return [grant["GrantId"] for grant in kms.list_grants(KeyId=key_id)["Grants"]]

    before = grant_ids()
    terms = {
        "KeyId": key_id,
        "GranteePrincipal": SCOPED_ARN,
        "RetiringPrincipal": SCOPED_ARN,
        "Operations": ["Encrypt"],
    }
    assert refusal(kms.create_grant, DryRun=True, **terms)[0] == "DryRunOperationException"
    assert grant_ids() == before
    made = kms.create_grant(**terms)
    assert refusal(kms.revoke_grant, DryRun=True, KeyId=key_id, GrantId=made["GrantId"])[:2] == (
        "DryRunOperationException",
        412,
    )
    assert refusal(kms.retire_grant, DryRun=True, GrantToken=made["GrantToken"])[0] == "DryRunOperationException"
    assert refusal(kms.retire_grant, DryRun=True, KeyId=key_id, GrantId=made["GrantId"])[0] == (
        "DryRunOperationException"
    )
    assert made["GrantId"] in grant_ids()
    # a dry run of revoking a grant that does not exist says so, as the call would
    assert refusal(kms.revoke_grant, DryRun=True, KeyId=key_id, GrantId="0" * 64)[0] == "NotFoundException"
    kms.revoke_grant(KeyId=key_id, GrantId=made["GrantId"])
    assert made["GrantId"] not in grant_ids()


def test_a_dry_run_reports_what_the_call_would_meet(server: KMSServer, kms: Any, keys: dict[str, str]) -> None:
    symmetric = kms.create_key()["KeyMetadata"]["KeyId"]  # no grant to scoped on it
    scoped = server.aws_client("scoped")
    assert refusal(scoped.encrypt, DryRun=True, KeyId=symmetric, Plaintext=b"x")[0] == "AccessDeniedException"
    unchecked = server.aws_client(validate=False)  # botocore would refuse the 4097 bytes itself
    assert refusal(unchecked.encrypt, DryRun=True, KeyId=symmetric, Plaintext=b"x" * 4097)[0] == "ValidationException"
    assert refusal(kms.encrypt, DryRun=True, KeyId=keys["ecc"], Plaintext=b"x")[0] == "InvalidKeyUsageException"
    sealed = kms.encrypt(KeyId=symmetric, Plaintext=b"x", EncryptionContext=CONTEXT)["CiphertextBlob"]
    assert refusal(kms.decrypt, DryRun=True, CiphertextBlob=sealed)[0] == "InvalidCiphertextException"
    disabled = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.disable_key(KeyId=disabled)
    assert refusal(kms.generate_data_key, DryRun=True, KeyId=disabled, KeySpec="AES_256")[0] == "DisabledException"


def test_ignore_ciphertext_checks_only_the_permission_on_the_named_key(
    server: KMSServer, kms: Any, keys: dict[str, str]
) -> None:
    symmetric, other = keys["symmetric"], keys["other"]
    modifiers = {"DryRun": True, "DryRunModifiers": ["IGNORE_CIPHERTEXT"]}
    assert refusal(kms.decrypt, KeyId=symmetric, CiphertextBlob=b"not a ciphertext", **modifiers)[:2] == (
        "DryRunOperationException",
        412,
    )
    no_ciphertext = server.aws_client(validate=False)  # botocore requires CiphertextBlob; AWS does not here
    assert refusal(no_ciphertext.decrypt, KeyId=symmetric, **modifiers)[0] == "DryRunOperationException"
    assert refusal(no_ciphertext.decrypt, **modifiers)[0] == "ValidationException"  # which key? KeyId is required
    assert (
        refusal(no_ciphertext.re_encrypt, SourceKeyId=symmetric, DestinationKeyId=other, **modifiers)[0]
        == "DryRunOperationException"
    )
    scoped = server.aws_client("scoped", validate=False)
    assert refusal(scoped.decrypt, KeyId=symmetric, **modifiers)[0] == "AccessDeniedException"
    # without DryRun the modifier does nothing: the ciphertext is checked as always
    assert refusal(kms.decrypt, KeyId=symmetric, CiphertextBlob=b"x" * 64, DryRunModifiers=["IGNORE_CIPHERTEXT"])[
        0
    ] == ("InvalidCiphertextException")


def test_dry_run_fields_must_be_well_formed(server: KMSServer, keys: dict[str, str]) -> None:
    raw = server.aws_client(validate=False)
    symmetric = keys["symmetric"]
    assert refusal(raw.encrypt, KeyId=symmetric, Plaintext=b"x", DryRun="yes")[0] == "ValidationException"
    assert (
        refusal(raw.decrypt, KeyId=symmetric, CiphertextBlob=b"x", DryRun=True, DryRunModifiers=["IGNORE_EVERYTHING"])[
            0
        ]
        == "ValidationException"
    )
