"""The one error hierarchy every provider maps into.

Consumers (operator, plugin, CLI, REST server) decide retry-or-fail on these types,
never on message strings. ``code`` optionally carries the precise KMS v1.0 wire code
(e.g. ``KMS.1201``) when the raiser knows it; the wire layer falls back to a default
code per class otherwise. Messages never contain key material.
"""

from __future__ import annotations


class KMSError(Exception):
    """Base class. ``retryable`` says whether repeating the same call may succeed."""

    retryable: bool = False
    default_code: str = "KMS.0101"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code


class InvalidArgument(KMSError):
    default_code = "KMS.0308"


class NotFound(KMSError):
    default_code = "KMS.0207"


class AlreadyExists(KMSError):
    default_code = "KMS.1104"


class LimitExceeded(KMSError):
    """A quota (e.g. the CMK count) would be exceeded."""

    default_code = "KMS.1105"


class InvalidState(KMSError):
    """The key is not in a state that allows the operation."""

    default_code = "KMS.1301"


class Disabled(InvalidState):
    default_code = "KMS.0209"


class PendingDeletion(InvalidState):
    default_code = "KMS.0210"


class InvalidCiphertext(KMSError):
    """Any way a ciphertext can be wrong: truncated, tampered, foreign, wrong AAD."""

    default_code = "KMS.2201"


class Unauthenticated(KMSError):
    """The request carried no valid credential or signature (HTTP 401)."""

    default_code = "KMS.0302"


class AccessDenied(KMSError):
    """The principal is known but lacks the permission (HTTP 403)."""

    default_code = "KMS.0306"


class Throttled(KMSError):
    retryable = True
    default_code = "KMS.0105"


class Unavailable(KMSError):
    """The backend could not be reached or answered with a server error."""

    retryable = True
    default_code = "KMS.0104"
