"""The KMS v1.0 wire's errors, both directions: HTTP status and body of a refusal, and back.

The ``KMS.xxxx`` codes are the Huawei/OTC wire's: the server answers with the code a v1.0
wire module set on the error, else the code of the error's reason; the REST providers turn a
server's code back into the error class and reason (keeping the code it answered).
"""

from __future__ import annotations

import binascii
import json

from kubekms.errors import (
    AccessDenied,
    AlreadyExists,
    Disabled,
    InvalidArgument,
    InvalidCiphertext,
    InvalidState,
    KMSError,
    LimitExceeded,
    NotFound,
    PendingDeletion,
    Reason,
    Throttled,
    Unauthenticated,
    Unavailable,
)
from kubekms.wire.v1.values import JsonObject

# every reason's code on this wire (a reason absent here is a bug: the test suite checks the table is whole)
CODE_BY_REASON: dict[Reason, str] = {
    Reason.INTERNAL: "KMS.0101",
    Reason.INVALID_ARGUMENT: "KMS.0308",
    Reason.CUSTOM_KEY_STORE_NOT_FOUND: "KMS.0207",  # the AWS wire's; before NOT_FOUND: a KMS.0207 reads as that
    Reason.NOT_FOUND: "KMS.0207",
    Reason.ALREADY_EXISTS: "KMS.1104",
    Reason.LIMIT_EXCEEDED: "KMS.1105",
    Reason.INVALID_STATE: "KMS.1301",
    Reason.KEY_DISABLED: "KMS.0209",
    Reason.KEY_PENDING_DELETION: "KMS.0210",
    Reason.INVALID_CIPHERTEXT: "KMS.2201",
    Reason.UNAUTHENTICATED: "KMS.0302",
    Reason.ACCESS_DENIED: "KMS.0306",
    Reason.THROTTLED: "KMS.0105",
    Reason.UNAVAILABLE: "KMS.0104",
    Reason.UNKNOWN_PATH: "KMS.0201",
    Reason.MALFORMED_BODY: "KMS.0202",
    Reason.BODY_TOO_LARGE: "KMS.0203",
    Reason.PARAMETER_MISSING: "KMS.0204",
    Reason.CREDENTIAL_MISSING: "KMS.0301",
    Reason.PROJECT_DENIED: "KMS.0305",
    Reason.OPERATION_DENIED: "KMS.0307",
    Reason.KEY_NOT_DISABLED: "KMS.1201",
    Reason.KEY_NOT_ENABLED: "KMS.1301",
    Reason.ALREADY_PENDING_DELETION: "KMS.1402",
    Reason.NOT_PENDING_DELETION: "KMS.1501",
    Reason.DELETION_NOT_CONFIRMED: "KMS.1401",
    Reason.PENDING_DAYS_INVALID: "KMS.1401",
    Reason.ALIAS_INVALID: "KMS.1101",
    Reason.DESCRIPTION_INVALID: "KMS.1103",
    Reason.TAG_COUNT_EXCEEDED: "KMS.0409",
    Reason.TAG_KEY_RESERVED: "KMS.0411",  # before TAG_KEY_INVALID: a server's KMS.0411 reads as that
    Reason.TAG_KEY_INVALID: "KMS.0411",
    Reason.TAG_VALUE_INVALID: "KMS.0410",
    Reason.LIST_LIMIT_INVALID: "KMS.1601",
    Reason.MARKER_INVALID: "KMS.1602",
    Reason.STATE_FILTER_INVALID: "KMS.1603",
    Reason.AAD_INVALID: "KMS.0208",
    Reason.RANDOM_LENGTH_INVALID: "KMS.1801",
    Reason.DATA_KEY_LENGTH_INVALID: "KMS.1901",
    Reason.PLAINTEXT_LENGTH_INVALID: "KMS.2101",
    # OTC's own codes (KMS.23xx-25xx are its quota and grant codes, not these)
    Reason.KEY_USAGE_INVALID: "KMS.0332",  # the key does not support the (signing) algorithm
    Reason.UNSUPPORTED_OPERATION: "KMS.0325",  # not for this key type
    Reason.SIGNATURE_INVALID: "KMS.0342",  # kubekms's: Huawei's verify answers signature_valid "false" instead
    Reason.MAC_INVALID: "KMS.0343",  # kubekms's: Huawei's verify-mac answers mac_valid false instead
    Reason.IMPORT_TOKEN_INVALID: "KMS.2605",
    Reason.IMPORT_TOKEN_EXPIRED: "KMS.2601",
    Reason.KEY_MATERIAL_INCORRECT: "KMS.2606",
}

# a code answered by a server -> its reason; where two share a code the later, more specific one wins (KMS.1301)
_REASON_BY_CODE: dict[str, Reason] = {code: reason for reason, code in CODE_BY_REASON.items()}

_STATUS_BY_CODE = {"KMS.0215": 405, "KMS.0203": 413}


def error_code(error: KMSError) -> str:
    """The code this wire answers for an error: the one a v1.0 wire module chose, else its reason's."""
    return error.code or CODE_BY_REASON[error.reason]


def error_status(error: KMSError) -> int:
    code = error_code(error)
    if code in _STATUS_BY_CODE:
        return _STATUS_BY_CODE[code]
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, Unauthenticated):
        return 401
    if isinstance(error, AccessDenied):
        return 403
    if isinstance(error, Throttled):
        return 429
    if isinstance(error, Unavailable):
        return 503
    if type(error) is KMSError:
        return 500
    return 400


def error_body(error: KMSError) -> JsonObject:
    """Huawei's ``{"error": {"error_code", "error_msg"}}``, and the same two fields at the top level: Huawei's
    Node.js SDK core reads only those (or ``error.code``/``error.message``), its API gateway's form."""
    code = error_code(error)
    return {"error": {"error_code": code, "error_msg": error.message}, "error_code": code, "error_msg": error.message}


# wire code -> our class, for codes whose class is not decided by the HTTP status alone
_CLASS_BY_CODE: dict[str, type[KMSError]] = {
    "KMS.0207": NotFound,
    "KMS.0209": Disabled,
    "KMS.0210": PendingDeletion,
    "KMS.1104": AlreadyExists,
    "KMS.1105": LimitExceeded,
    "KMS.1201": InvalidState,
    "KMS.1301": InvalidState,
    "KMS.1402": InvalidState,
    "KMS.1501": InvalidState,
    "KMS.2201": InvalidCiphertext,
    "KMS.2203": InvalidCiphertext,
    "KMS.2204": InvalidCiphertext,
    "KMS.0104": Unavailable,
    "KMS.0105": Throttled,
}


def error_from_wire(status: int, raw_body: bytes) -> KMSError:
    """An error answer (status >= 400) as our typed error; the message is the server's, never key material."""
    code, message = "", ""
    try:
        error = json.loads(raw_body).get("error") or {}
        code, message = str(error.get("error_code") or ""), str(error.get("error_msg") or "")
    except (ValueError, AttributeError, UnicodeDecodeError, binascii.Error):
        pass
    message = message or f"the KMS answered HTTP {status}"
    cls = _CLASS_BY_CODE.get(code) or _class_by_status(status, code)
    return cls(message, reason=_REASON_BY_CODE.get(code), code=code or None)


def _class_by_status(status: int, code: str) -> type[KMSError]:
    if status == 429:
        return Throttled
    if status >= 500:
        return Unavailable
    if status == 401 or code in ("KMS.0301", "KMS.0302", "KMS.0303", "KMS.0304", "KMS.0305"):
        return Unauthenticated
    if status == 403:
        return AccessDenied
    if status == 404:
        return NotFound
    return InvalidArgument
