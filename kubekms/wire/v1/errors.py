"""The KMS v1.0 wire's errors, both directions: HTTP status and body of a refusal, and back.

The ``KMS.xxxx`` codes are the Huawei/OTC wire's; the server answers with the code an error
carries, the REST providers turn a server's code back into the error class.
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
    Throttled,
    Unauthenticated,
    Unavailable,
)
from kubekms.wire.v1.values import JsonObject

_STATUS_BY_CODE = {"KMS.0215": 405, "KMS.0203": 413}


def error_status(error: KMSError) -> int:
    if error.code in _STATUS_BY_CODE:
        return _STATUS_BY_CODE[error.code]
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
    return {"error": {"error_code": error.code, "error_msg": error.message}}


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
    return cls(message, code=code or None)


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
