"""The AWS operations added with policies, grants, asymmetric/HMAC keys and import, attacked as a hostile client:
wrong JSON types in every field, oversized values, unknown enum values and out-of-order calls earn a precise
4xx error type, write nothing, and leave no traceback or secret in the server log."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from fuzz_checks import V1_CODE, server_log, snapshot
from fuzz_http import Connection
from fuzz_requests import Operation, Target, encode

from kubekms.devenv.kmsserver import KMSServer

SECRET = b"TOPSECRET-new-ops-plaintext"
PRECISE = {
    "ValidationException",
    "SerializationException",
    "NotFoundException",
    "MalformedPolicyDocumentException",
    "InvalidGrantTokenException",
    "InvalidKeyUsageException",
    "InvalidImportTokenException",
    "KMSInvalidSignatureException",
    "KMSInvalidMacException",
    "KMSInvalidStateException",
    "DisabledException",
    "UnsupportedOperationException",
    "AlreadyExistsException",
    "AccessDeniedException",
}
WRONG_TYPES: list[Any] = [7, True, ["x"], {"a": 1}, "\ud800", 2**70]
GRANTEE = "arn:aws:iam::fuzz:user/grantee"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def aws(connection: Connection, target: Target, name: str, body: dict[str, Any]) -> tuple[int, Any]:
    op = Operation("aws", name, lambda t: body, read_only=False)
    answer = connection.send(encode(op, target, json.dumps(body).encode()))
    return answer.status, answer.json()


def created(connection: Connection, target: Target, body: dict[str, Any]) -> str:
    status, answer = aws(connection, target, "CreateKey", body)
    assert status == 200, answer
    return str(answer["KeyMetadata"]["KeyId"])


def refused(connection: Connection, target: Target, name: str, body: dict[str, Any]) -> str:
    status, answer = aws(connection, target, name, body)
    assert 400 <= status < 500, (name, body, status, answer)
    assert isinstance(answer, dict) and answer.get("__type") in PRECISE and answer.get("message"), (name, answer)
    return str(answer["__type"])


def valid_bodies(target: Target, keys: dict[str, str]) -> dict[str, dict[str, Any]]:
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}],
    }
    return {
        "PutKeyPolicy": {"KeyId": target.key_id, "PolicyName": "default", "Policy": json.dumps(policy)},
        "GetKeyPolicy": {"KeyId": target.key_id, "PolicyName": "default"},
        "ListKeyPolicies": {"KeyId": target.key_id, "Limit": 10},
        "CreateKey": {
            "KeySpec": "HMAC_256",
            "KeyUsage": "GENERATE_VERIFY_MAC",
            "Policy": json.dumps(policy),
            "Tags": [{"TagKey": "a", "TagValue": "b"}],
        },
        "CreateGrant": {
            "KeyId": target.key_id,
            "GranteePrincipal": GRANTEE,
            "Operations": ["Encrypt"],
            "Name": "n",
            "Constraints": {"EncryptionContextEquals": {"a": "b"}},
            "RetiringPrincipal": GRANTEE,
        },
        "ListGrants": {"KeyId": target.key_id, "Limit": 10, "GrantId": "x", "GranteePrincipal": GRANTEE},
        "ListRetirableGrants": {"RetiringPrincipal": GRANTEE, "Limit": 10},
        "RetireGrant": {"KeyId": target.key_id, "GrantId": "abc", "GrantToken": "tok"},
        "RevokeGrant": {"KeyId": target.key_id, "GrantId": "abc"},
        "UpdateAlias": {"AliasName": f"alias/{target.alias}", "TargetKeyId": target.key_id},
        "ReEncrypt": {
            "CiphertextBlob": b64(target.ciphertext),
            "DestinationKeyId": target.key_id,
            "SourceKeyId": target.key_id,
            "SourceEncryptionContext": {},
            "GrantTokens": [],
            "DestinationEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
        },
        "Sign": {
            "KeyId": keys["sign"],
            "Message": b64(SECRET),
            "MessageType": "RAW",
            "SigningAlgorithm": "ECDSA_SHA_256",
        },
        "Verify": {
            "KeyId": keys["sign"],
            "Message": b64(SECRET),
            "Signature": b64(b"s" * 70),
            "MessageType": "RAW",
            "SigningAlgorithm": "ECDSA_SHA_256",
        },
        "GetPublicKey": {"KeyId": keys["sign"], "GrantTokens": []},
        "GenerateMac": {"KeyId": keys["hmac"], "Message": b64(SECRET), "MacAlgorithm": "HMAC_SHA_256"},
        "VerifyMac": {
            "KeyId": keys["hmac"],
            "Message": b64(SECRET),
            "Mac": b64(b"x" * 32),
            "MacAlgorithm": "HMAC_SHA_256",
        },
        "GenerateDataKeyPair": {"KeyId": target.key_id, "KeyPairSpec": "ECC_NIST_P256", "EncryptionContext": {}},
        "GenerateDataKeyPairWithoutPlaintext": {"KeyId": target.key_id, "KeyPairSpec": "ECC_NIST_P256"},
        "GetParametersForImport": {
            "KeyId": keys["external"],
            "WrappingAlgorithm": "RSAES_OAEP_SHA_256",
            "WrappingKeySpec": "RSA_2048",
        },
        "ImportKeyMaterial": {
            "KeyId": keys["external"],
            "ImportToken": b64(b"t" * 100),
            "EncryptedKeyMaterial": b64(b"e" * 256),
            "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE",
        },
        "DeleteImportedKeyMaterial": {"KeyId": keys["external"]},
        "Encrypt": {"KeyId": target.key_id, "Plaintext": b64(SECRET), "GrantTokens": []},
    }


def grants(connection: Connection, target: Target) -> Any:
    status, answer = aws(connection, target, "ListGrants", {"KeyId": target.key_id})
    assert status == 200, answer
    return answer["Grants"]


def test_new_operations_refuse_hostile_input_precisely_and_change_nothing(
    fuzz_server: KMSServer, target: Target, connection: Connection
) -> None:
    keys = {
        "sign": created(connection, target, {"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}),
        "hmac": created(connection, target, {"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}),
        "external": created(connection, target, {"Origin": "EXTERNAL"}),
    }
    before, grants_before = snapshot(connection, target, [target.key_id]), grants(connection, target)
    seen: set[str] = set()
    for name, body in valid_bodies(target, keys).items():
        for field in body:
            for value in WRONG_TYPES:
                if type(value) is type(body[field]):
                    continue  # a number for a number field is no wrong type (its range is the fuzzer's)
                seen.add(refused(connection, target, name, {**body, field: value}))
    oversized = {
        ("PutKeyPolicy", "Policy"): "{" * 40_000,
        ("CreateKey", "KeySpec"): "RSA_" + "9" * 50_000,
        ("Sign", "Message"): b64(b"m" * 5000),
        ("GenerateMac", "Message"): b64(b"m" * 5000),
        ("Sign", "SigningAlgorithm"): "ECDSA_SHA_256" * 4000,
        ("RevokeGrant", "GrantId"): "g" * 50_000,
        ("Encrypt", "GrantTokens"): ["t" * 10_000],
    }
    for (name, field), value in oversized.items():
        assert refused(connection, target, name, {**valid_bodies(target, keys)[name], field: value}) in (
            "ValidationException",
            "MalformedPolicyDocumentException",
        )
    bodies = valid_bodies(target, keys)
    expected = [
        ("CreateGrant", {**bodies["CreateGrant"], "Operations": ["Encrypt"] * 10_000}, "ValidationException"),
        ("CreateGrant", {**bodies["CreateGrant"], "Operations": ["Nope"]}, "ValidationException"),
        ("Encrypt", {**bodies["Encrypt"], "GrantTokens": ["a"] * 11}, "ValidationException"),
        ("Encrypt", {**bodies["Encrypt"], "GrantTokens": ["forged"]}, "InvalidGrantTokenException"),
        ("PutKeyPolicy", {**bodies["PutKeyPolicy"], "Policy": "not json"}, "MalformedPolicyDocumentException"),
        ("PutKeyPolicy", {**bodies["PutKeyPolicy"], "Policy": "{}"}, "MalformedPolicyDocumentException"),
        ("PutKeyPolicy", {**bodies["PutKeyPolicy"], "PolicyName": "other"}, "NotFoundException"),
        ("CreateKey", {"Policy": '{"Statement": []}'}, "MalformedPolicyDocumentException"),
        ("CreateKey", {"KeySpec": "HMAC_256", "KeyUsage": "ENCRYPT_DECRYPT"}, "InvalidKeyUsageException"),
        ("CreateKey", {"KeySpec": "ECC_NIST_P999", "KeyUsage": "SIGN_VERIFY"}, "ValidationException"),
        ("Sign", {**bodies["Sign"], "KeyId": target.key_id}, "InvalidKeyUsageException"),
        ("Sign", {**bodies["Sign"], "SigningAlgorithm": "RSASSA_PSS_SHA_256"}, "InvalidKeyUsageException"),
        ("Sign", {**bodies["Sign"], "Message": "not base64!!"}, "ValidationException"),
        ("Sign", {**bodies["Sign"], "MessageType": "HASHED"}, "ValidationException"),
        ("Verify", bodies["Verify"], "KMSInvalidSignatureException"),
        ("GenerateMac", {**bodies["GenerateMac"], "KeyId": keys["sign"]}, "InvalidKeyUsageException"),
        ("VerifyMac", bodies["VerifyMac"], "KMSInvalidMacException"),
        ("GenerateDataKeyPair", {**bodies["GenerateDataKeyPair"], "KeyPairSpec": "SM2"}, "ValidationException"),
        ("GenerateDataKeyPair", {**bodies["GenerateDataKeyPair"], "KeyId": keys["sign"]}, "InvalidKeyUsageException"),
        ("ReEncrypt", {**bodies["ReEncrypt"], "DestinationKeyId": keys["sign"]}, "InvalidKeyUsageException"),
        ("ImportKeyMaterial", bodies["ImportKeyMaterial"], "InvalidImportTokenException"),  # no GetParametersForImport
        (
            "GetParametersForImport",
            {**bodies["GetParametersForImport"], "KeyId": target.key_id},
            "UnsupportedOperationException",
        ),
        ("UpdateAlias", {**bodies["UpdateAlias"], "AliasName": "alias/nope"}, "NotFoundException"),
        ("RevokeGrant", bodies["RevokeGrant"], "NotFoundException"),
    ]
    for name, body, error in expected:
        assert refused(connection, target, name, body) == error, (name, body)
    assert snapshot(connection, target, [target.key_id]) == before
    assert grants(connection, target) == grants_before
    assert seen >= {"ValidationException", "SerializationException"}, seen

    # out of order: a token for another key, a grant retired twice, a disabled and a pending-deletion key
    status, params = aws(connection, target, "GetParametersForImport", bodies["GetParametersForImport"])
    assert status == 200, params
    other = created(connection, target, {"Origin": "EXTERNAL"})
    wrong_key = {**bodies["ImportKeyMaterial"], "KeyId": other, "ImportToken": params["ImportToken"]}
    assert refused(connection, target, "ImportKeyMaterial", wrong_key) == "InvalidImportTokenException"
    status, grant = aws(connection, target, "CreateGrant", bodies["CreateGrant"])
    assert status == 200, grant
    assert aws(connection, target, "RetireGrant", {"GrantToken": grant["GrantToken"]})[0] == 200
    assert refused(connection, target, "RetireGrant", {"GrantToken": grant["GrantToken"]}) == "NotFoundException"
    assert aws(connection, target, "DisableKey", {"KeyId": keys["sign"]})[0] == 200
    assert refused(connection, target, "Sign", bodies["Sign"]) == "DisabledException"
    assert aws(connection, target, "ScheduleKeyDeletion", {"KeyId": keys["hmac"], "PendingWindowInDays": 7})[0] == 200
    assert refused(connection, target, "GenerateMac", bodies["GenerateMac"]) == "KMSInvalidStateException"

    assert fuzz_server.running
    log = server_log(fuzz_server)
    assert "Traceback" not in log and '"level": "error"' not in log
    assert SECRET.decode() not in log and b64(SECRET) not in log


def test_an_empty_retiring_principal_is_refused_not_read_as_every_grant(target: Target, connection: Connection) -> None:
    status, grant = aws(
        connection,
        target,
        "CreateGrant",
        {"KeyId": target.key_id, "GranteePrincipal": GRANTEE, "Operations": ["Encrypt"], "RetiringPrincipal": GRANTEE},
    )
    assert status == 200, grant
    # was 200 with every grant of the account: "" passed the ARN check and filtered nothing
    assert refused(connection, target, "ListRetirableGrants", {"RetiringPrincipal": ""}) == "ValidationException"
    no_grantee = {"KeyId": target.key_id, "GranteePrincipal": "", "Operations": ["Encrypt"]}
    assert refused(connection, target, "CreateGrant", no_grantee) == "ValidationException"


def test_a_tag_without_its_required_tag_value_is_refused_and_writes_nothing(
    target: Target, connection: Connection
) -> None:
    before = snapshot(connection, target, [target.key_id])
    for name, body in (
        ("CreateKey", {"Tags": [{"TagKey": "team"}]}),  # was 200: a new key tagged team=""
        ("TagResource", {"KeyId": target.key_id, "Tags": [{"TagKey": "team"}]}),
        ("CreateKey", {"Tags": [{"TagKey": "team", "TagValue": None}]}),
    ):
        assert refused(connection, target, name, body) == "ValidationException", (name, body)
    assert snapshot(connection, target, [target.key_id]) == before


def test_a_backtracking_wildcard_in_a_key_policy_does_not_hang_the_server(
    target: Target, connection: Connection
) -> None:
    # was a hang: each "*" compiled to ".*", so "*a*a...*b" against "aaa...a" backtracked exponentially
    pattern = "*a" * 30 + "b"
    statement = {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {**statement, "Action": ["kms:PutKeyPolicy", "kms:GetKeyPolicy", "kms:DescribeKey"]},
            {
                **statement,
                "Action": "kms:Encrypt",
                "Condition": {"StringLike": {"kms:EncryptionContext:team": pattern}},
            },
        ],
    }
    key_id = created(connection, target, {"Policy": json.dumps(policy)})
    started = time.monotonic()
    body = {"KeyId": key_id, "Plaintext": b64(b"x"), "EncryptionContext": {"team": "a" * 2000}}
    assert refused(connection, target, "Encrypt", body) == "AccessDeniedException"
    assert time.monotonic() - started < 5
    status, answer = aws(connection, target, "Encrypt", {**body, "EncryptionContext": {"team": "a" * 2000 + "b"}})
    assert status == 200, answer


def test_new_v1_operations_refuse_wrong_types_with_a_wire_code_and_write_nothing(
    target: Target, connection: Connection
) -> None:
    def v1(path: str, body: dict[str, Any]) -> tuple[int, Any]:
        op = Operation("v1", path, lambda t: body, read_only=False, path=path)
        answer = connection.send(encode(op, target, json.dumps(body).encode()))
        return answer.status, answer.json()

    status, answer = v1("create-key", {"key_alias": "fuzz-v1-signer", "key_spec": "EC_P256"})
    assert status == 200, answer
    signer = answer["key_info"]["key_id"]
    bodies = {
        "sign": {"key_id": signer, "message": b64(SECRET), "signing_algorithm": "ECDSA_SHA_256", "message_type": "RAW"},
        "verify": {
            "key_id": signer,
            "message": b64(SECRET),
            "signature": b64(b"s" * 70),
            "signing_algorithm": "ECDSA_SHA_256",
            "message_type": "RAW",
        },
        "get-publickey": {"key_id": signer},
        "generate-mac": {"key_id": signer, "message": b64(SECRET), "mac_algorithm": "HMAC_SHA_256"},
        "verify-mac": {"key_id": signer, "message": b64(SECRET), "mac": b64(b"m"), "mac_algorithm": "HMAC_SHA_256"},
        "create-key": {"key_alias": "fuzz-v1-new", "key_spec": "HMAC_256", "tags": [{"key": "k", "value": "v"}]},
    }
    before = snapshot(connection, target, [target.key_id])
    for path, body in bodies.items():
        for field in body:
            for value in [*WRONG_TYPES, "x" * 20_000]:
                status, answer = v1(path, {**body, field: value})
                error = answer.get("error") if isinstance(answer, dict) else None
                assert status == 400 and isinstance(error, dict), (path, field, value, status, answer)
                assert V1_CODE.fullmatch(str(error.get("error_code"))), (path, field, answer)
    assert snapshot(connection, target, [target.key_id]) == before
