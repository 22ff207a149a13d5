"""The KMS v1.0 wire's grants: Huawei's names for the operations and principals of the keystore's AWS-style grants.

A grant's grantee and retiring principals are principals of the server (the names in its principals file); the
keystore keeps them as the ARNs the AWS wire and key policies use (``arn:aws:iam::<project>:user/<name>``), so a
grant made on either wire applies on both. Huawei's operation names map onto AWS's grant operations; the v1.0
wire also takes its own names of the asymmetric and MAC operations.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from kubekms.backend import Grant
from kubekms.errors import InvalidArgument
from kubekms.wire.v1.values import JsonObject, to_millis

GRANT_OPERATIONS: dict[str, str] = {
    # Huawei's
    "create-datakey": "GenerateDataKey",
    "create-datakey-without-plaintext": "GenerateDataKeyWithoutPlaintext",
    "encrypt-datakey": "Encrypt",
    "decrypt-datakey": "Decrypt",
    "encrypt-data": "Encrypt",
    "decrypt-data": "Decrypt",
    "describe-key": "DescribeKey",
    "create-grant": "CreateGrant",
    "retire-grant": "RetireGrant",
    # this wire's asymmetric and MAC operations
    "sign": "Sign",
    "verify": "Verify",
    "get-publickey": "GetPublicKey",
    "generate-mac": "GenerateMac",
    "verify-mac": "VerifyMac",
}
# an AWS grant operation -> the v1.0 names that use it (Encrypt: encrypt-datakey and encrypt-data)
_WIRE_NAMES: dict[str, list[str]] = {}
for _name, _operation in GRANT_OPERATIONS.items():
    _WIRE_NAMES.setdefault(_operation, []).append(_name)

PRINCIPAL_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")  # matched whole
GRANT_NAME = re.compile(r"[a-zA-Z0-9:/_-]{1,255}")  # Huawei's
USER_TYPE = "user"


def principal_arn(project_id: str, name: str) -> str:
    return f"arn:aws:iam::{project_id}:user/{name}"


def account_arn(project_id: str) -> str:
    """The issuing account of a grant made in this project (as the AWS wire records it)."""
    return f"arn:aws:iam::{project_id}:root"


def principal_from_request(value: object, field: str) -> str:
    """A principal's name as a request gives it (Huawei: a user id)."""
    if not isinstance(value, str) or not PRINCIPAL_NAME.fullmatch(value):
        raise InvalidArgument(f"{field} must be a principal's name (1-64 of A-Z a-z 0-9 _ . @ -)", code="KMS.0308")
    return value


def operations_from_request(names: Sequence[str]) -> tuple[str, ...]:
    """Huawei's operation names as AWS grant operations, in order, each once; only create-grant is refused."""
    unknown = sorted(set(names) - set(GRANT_OPERATIONS))
    if unknown:
        raise InvalidArgument(f"grant operations must be among {', '.join(GRANT_OPERATIONS)}; got {unknown}",
                              code="KMS.0308")  # fmt: skip
    operations = tuple(dict.fromkeys(GRANT_OPERATIONS[name] for name in names))
    if operations == ("CreateGrant",):
        raise InvalidArgument("a grant cannot allow create-grant alone", code="KMS.0308")
    return operations


def wire_operations(operations: Sequence[str]) -> list[str]:
    """A grant's operations by their v1.0 names (an AWS-only one, such as ReEncryptFrom, by its AWS name)."""
    return [name for operation in operations for name in _WIRE_NAMES.get(operation, [operation])]


def wire_principal(arn: str, project_id: str) -> str:
    """A principal of this project by its name; any other (made on the AWS wire) by its ARN."""
    prefix = principal_arn(project_id, "")
    return arn.removeprefix(prefix) if arn.startswith(prefix) else arn


def grant_entry(grant: Grant, project_id: str) -> JsonObject:
    terms = grant.terms
    return {
        "key_id": grant.key_id,
        "grant_id": grant.grant_id,
        "grantee_principal": wire_principal(terms.grantee, project_id),
        "grantee_principal_type": USER_TYPE,
        "operations": list(terms.permissions) or wire_operations(terms.operations),
        "issuing_principal": project_id if terms.issuing_account == account_arn(project_id) else terms.issuing_account,
        "creation_date": to_millis(grant.created_at),
        "name": terms.name,
        "retiring_principal": wire_principal(terms.retiring, project_id) if terms.retiring else "",
    }
