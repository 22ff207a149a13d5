"""AWS KMS error types <-> the kubekms error hierarchy, both directions, in one table.

The ``aws`` provider turns an AWS error type (``__type`` on the JSON 1.1 wire, the error
code botocore reports) into a :class:`~kubekms.errors.KMSError`; the server's AWS wire
turns a ``KMSError`` back into the ``__type`` and HTTP status AWS KMS would answer.
"""

from __future__ import annotations

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


class InvalidSignature(Unauthenticated):
    """The SigV4 signature is wrong or expired (AWS: InvalidSignatureException)."""


class DryRunOperation(KMSError):
    """A call with ``DryRun: true`` passed every check and was not done (AWS: DryRunOperationException, 412)."""

    def __init__(self, operation: str) -> None:
        super().__init__(
            f"The request would have succeeded; {operation} was not done because DryRun was set.",
            code="DryRunOperationException",  # the audit record's result: a dry run, not an internal error
        )


class UnknownOperation(InvalidArgument):
    """X-Amz-Target names no operation this server offers (AWS: UnknownOperationException)."""


class MalformedBody(InvalidArgument):
    """The body is not a JSON object (AWS: SerializationException)."""


class IncorrectKey(InvalidCiphertext):
    """Decrypt named a key other than the one that made the ciphertext (AWS: IncorrectKeyException)."""


class NotAuthorized(AccessDenied):
    """A name reserved for AWS itself, such as an ``alias/aws/`` alias (AWS: NotAuthorizedException)."""


class InvalidGrantToken(InvalidArgument):
    """A grant token this server never issued, or of a grant retired or revoked since (InvalidGrantTokenException)."""


class MalformedPolicyDocument(InvalidArgument):
    """A key policy outside the grammar, or one that would lock its caller out.

    AWS: MalformedPolicyDocumentException.
    """


# AWS error type -> our class. Types not listed fall back by HTTP status (see aws_error_class).
AWS_ERROR_CLASSES: dict[str, type[KMSError]] = {
    "NotFoundException": NotFound,
    "DisabledException": Disabled,
    "KMSInvalidStateException": InvalidState,
    "InvalidCiphertextException": InvalidCiphertext,
    "IncorrectKeyException": InvalidCiphertext,
    "AlreadyExistsException": AlreadyExists,
    "LimitExceededException": LimitExceeded,
    "ValidationException": InvalidArgument,
    "InvalidAliasNameException": InvalidArgument,
    "InvalidArnException": InvalidArgument,
    "InvalidMarkerException": InvalidArgument,
    "InvalidKeyUsageException": InvalidArgument,
    "KMSInvalidSignatureException": InvalidArgument,
    "KMSInvalidMacException": InvalidArgument,
    "InvalidImportTokenException": InvalidArgument,
    "ExpiredImportTokenException": InvalidArgument,
    "IncorrectKeyMaterialException": InvalidArgument,
    "InvalidGrantTokenException": InvalidArgument,
    "MalformedPolicyDocumentException": InvalidArgument,
    "TagException": InvalidArgument,
    "UnsupportedOperationException": InvalidArgument,
    "SerializationException": InvalidArgument,
    "UnknownOperationException": InvalidArgument,
    "AccessDeniedException": AccessDenied,
    "NotAuthorizedException": AccessDenied,
    "UnrecognizedClientException": Unauthenticated,
    "InvalidSignatureException": Unauthenticated,
    "IncompleteSignature": Unauthenticated,
    "MissingAuthenticationToken": Unauthenticated,
    "MissingAuthenticationTokenException": Unauthenticated,
    "ExpiredTokenException": Unauthenticated,
    "InvalidClientTokenId": Unauthenticated,
    "ThrottlingException": Throttled,
    "Throttling": Throttled,
    "TooManyRequestsException": Throttled,
    "RequestLimitExceeded": Throttled,
    "KMSInternalException": Unavailable,
    "DependencyTimeoutException": Unavailable,
    "KeyUnavailableException": Unavailable,
    "InternalFailure": Unavailable,
    "ServiceUnavailable": Unavailable,
}


def aws_error_class(error_type: str, message: str, http_status: int) -> type[KMSError]:
    """Our class for an AWS error; ``KMSInvalidStateException`` on a pending-deletion key is PendingDeletion."""
    known = AWS_ERROR_CLASSES.get(error_type)
    if known is InvalidState and "pending deletion" in message.lower():
        return PendingDeletion
    if known is not None:
        return known
    if http_status >= 500:
        return Unavailable
    if http_status in (401, 403):
        return AccessDenied if http_status == 403 else Unauthenticated
    return InvalidArgument


# Our class -> (AWS __type, HTTP status); most specific class first (PendingDeletion before InvalidState).
_AWS_TYPE_BY_CLASS: tuple[tuple[type[KMSError], str, int], ...] = (
    (DryRunOperation, "DryRunOperationException", 412),
    (InvalidSignature, "InvalidSignatureException", 400),
    (IncorrectKey, "IncorrectKeyException", 400),
    (UnknownOperation, "UnknownOperationException", 400),
    (MalformedBody, "SerializationException", 400),
    (NotAuthorized, "NotAuthorizedException", 400),
    (InvalidGrantToken, "InvalidGrantTokenException", 400),
    (MalformedPolicyDocument, "MalformedPolicyDocumentException", 400),
    (Disabled, "DisabledException", 400),
    (PendingDeletion, "KMSInvalidStateException", 400),
    (InvalidState, "KMSInvalidStateException", 400),
    (NotFound, "NotFoundException", 400),
    (AlreadyExists, "AlreadyExistsException", 400),
    (LimitExceeded, "LimitExceededException", 400),
    (InvalidCiphertext, "InvalidCiphertextException", 400),
    (InvalidArgument, "ValidationException", 400),
    (Unauthenticated, "UnrecognizedClientException", 400),
    (AccessDenied, "AccessDeniedException", 400),
    (Throttled, "ThrottlingException", 400),
    (Unavailable, "KMSInternalException", 500),
)


# reasons whose AWS type is more precise than their class's
_AWS_TYPE_BY_REASON: dict[Reason, str] = {
    Reason.CREDENTIAL_MISSING: "MissingAuthenticationTokenException",
    Reason.KEY_USAGE_INVALID: "InvalidKeyUsageException",
    Reason.UNSUPPORTED_OPERATION: "UnsupportedOperationException",
    Reason.SIGNATURE_INVALID: "KMSInvalidSignatureException",
    Reason.MAC_INVALID: "KMSInvalidMacException",
    Reason.IMPORT_TOKEN_INVALID: "InvalidImportTokenException",
    Reason.IMPORT_TOKEN_EXPIRED: "ExpiredImportTokenException",
    Reason.KEY_MATERIAL_INCORRECT: "IncorrectKeyMaterialException",
    Reason.CUSTOM_KEY_STORE_NOT_FOUND: "CustomKeyStoreNotFoundException",
    Reason.TAG_KEY_RESERVED: "TagException",
    Reason.TAG_KEY_INVALID: "TagException",  # AWS: "one or more tags are not valid"
    Reason.TAG_VALUE_INVALID: "TagException",
    Reason.TAG_COUNT_EXCEEDED: "LimitExceededException",  # AWS's TagResource: the 50-tag quota
}


# reasons whose AWS type AWS also answers for other refusals (any quota, any bad tag): not read back
_SHARED_AWS_TYPES = (Reason.CREDENTIAL_MISSING, Reason.TAG_KEY_RESERVED, Reason.TAG_KEY_INVALID,
                     Reason.TAG_VALUE_INVALID, Reason.TAG_COUNT_EXCEEDED)  # fmt: skip

# AWS error type -> the reason our error carries (what a caller decides on: a refused Verify is a False)
_REASON_BY_AWS_TYPE: dict[str, Reason] = {
    error_type: reason for reason, error_type in _AWS_TYPE_BY_REASON.items() if reason not in _SHARED_AWS_TYPES
}


def aws_error_reason(error_type: str) -> Reason | None:
    """The precise reason of an AWS error type, where one exists beyond its class's."""
    return _REASON_BY_AWS_TYPE.get(error_type)


def aws_error_type(error: KMSError) -> tuple[str, int]:
    """The ``__type`` and HTTP status AWS KMS answers for this error (AWS sends 4xx as 400, but a dry run's 412)."""
    if error.reason in _AWS_TYPE_BY_REASON:
        return _AWS_TYPE_BY_REASON[error.reason], 400
    for error_class, error_type, status in _AWS_TYPE_BY_CLASS:
        if isinstance(error, error_class):
            return error_type, status
    return "KMSInternalException", 500
