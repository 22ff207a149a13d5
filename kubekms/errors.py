"""The one error hierarchy every provider maps into.

Consumers (operator, plugin, CLI, REST server) decide retry-or-fail on these types,
never on message strings. ``reason`` says precisely why, in the domain's words (a
:class:`Reason`); each wire turns a reason into its own vocabulary (the KMS v1.0 wire's
``KMS.xxxx`` codes live in :mod:`kubekms.wire.v1.errors`, AWS's exception names in
:mod:`kubekms.wire.aws_errors`). ``code`` is set only by a wire module: a code the
wire itself chose for a refusal, or the code a remote server answered with. Messages
never contain key material.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a call was refused, when a caller may want more than the class says."""

    INTERNAL = "internal"
    INVALID_ARGUMENT = "invalid_argument"
    NOT_FOUND = "not_found"
    ALREADY_EXISTS = "already_exists"
    LIMIT_EXCEEDED = "limit_exceeded"
    INVALID_STATE = "invalid_state"
    KEY_DISABLED = "key_disabled"
    KEY_PENDING_DELETION = "key_pending_deletion"
    INVALID_CIPHERTEXT = "invalid_ciphertext"
    UNAUTHENTICATED = "unauthenticated"
    ACCESS_DENIED = "access_denied"
    THROTTLED = "throttled"
    UNAVAILABLE = "unavailable"
    # requests
    UNKNOWN_PATH = "unknown_path"
    MALFORMED_BODY = "malformed_body"
    BODY_TOO_LARGE = "body_too_large"
    PARAMETER_MISSING = "parameter_missing"
    CREDENTIAL_MISSING = "credential_missing"
    PROJECT_DENIED = "project_denied"
    OPERATION_DENIED = "operation_denied"
    # key lifecycle
    KEY_NOT_DISABLED = "key_not_disabled"
    KEY_NOT_ENABLED = "key_not_enabled"
    ALREADY_PENDING_DELETION = "already_pending_deletion"
    NOT_PENDING_DELETION = "not_pending_deletion"
    PENDING_DAYS_INVALID = "pending_days_invalid"
    DELETION_NOT_CONFIRMED = "deletion_not_confirmed"
    # names, tags, listing
    ALIAS_INVALID = "alias_invalid"
    DESCRIPTION_INVALID = "description_invalid"
    TAG_COUNT_EXCEEDED = "tag_count_exceeded"
    TAG_KEY_INVALID = "tag_key_invalid"
    TAG_KEY_RESERVED = "tag_key_reserved"  # a prefix kept for the cloud's own tags (aws:)
    TAG_VALUE_INVALID = "tag_value_invalid"
    LIST_LIMIT_INVALID = "list_limit_invalid"
    MARKER_INVALID = "marker_invalid"
    STATE_FILTER_INVALID = "state_filter_invalid"
    # data
    AAD_INVALID = "aad_invalid"
    RANDOM_LENGTH_INVALID = "random_length_invalid"
    DATA_KEY_LENGTH_INVALID = "data_key_length_invalid"
    PLAINTEXT_LENGTH_INVALID = "plaintext_length_invalid"
    # key types (asymmetric, HMAC)
    KEY_USAGE_INVALID = "key_usage_invalid"  # the key's spec or usage does not allow the operation or algorithm
    UNSUPPORTED_OPERATION = "unsupported_operation"  # not for this key type at all (e.g. rotating an RSA key)
    SIGNATURE_INVALID = "signature_invalid"  # Verify: the signature does not match
    MAC_INVALID = "mac_invalid"  # VerifyMac: the MAC does not match
    # imported key material
    IMPORT_TOKEN_INVALID = "import_token_invalid"  # not issued for this key by GetParametersForImport
    IMPORT_TOKEN_EXPIRED = "import_token_expired"
    KEY_MATERIAL_INCORRECT = "key_material_incorrect"  # not the material imported before, or not a key of its spec
    # custom key stores (CloudHSM, external): none exist here
    CUSTOM_KEY_STORE_NOT_FOUND = "custom_key_store_not_found"


class KMSError(Exception):
    """Base class. ``retryable`` says whether repeating the same call may succeed."""

    retryable: bool = False
    default_reason: Reason = Reason.INTERNAL

    def __init__(self, message: str, *, reason: Reason | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.code = code

    @property
    def identifier(self) -> str:
        """What a person reads beside the message: the wire's code when one was given, else the reason."""
        return self.code or self.reason.value


class InvalidArgument(KMSError):
    default_reason = Reason.INVALID_ARGUMENT


class NotFound(KMSError):
    default_reason = Reason.NOT_FOUND


class AlreadyExists(KMSError):
    default_reason = Reason.ALREADY_EXISTS


class LimitExceeded(KMSError):
    """A quota (e.g. the CMK count) would be exceeded."""

    default_reason = Reason.LIMIT_EXCEEDED


class InvalidState(KMSError):
    """The key is not in a state that allows the operation."""

    default_reason = Reason.INVALID_STATE


class Disabled(InvalidState):
    default_reason = Reason.KEY_DISABLED


class PendingDeletion(InvalidState):
    default_reason = Reason.KEY_PENDING_DELETION


class InvalidCiphertext(KMSError):
    """Any way a ciphertext can be wrong: truncated, tampered, foreign, wrong AAD."""

    default_reason = Reason.INVALID_CIPHERTEXT


class Unauthenticated(KMSError):
    """The request carried no valid credential or signature (HTTP 401)."""

    default_reason = Reason.UNAUTHENTICATED


class AccessDenied(KMSError):
    """The principal is known but lacks the permission (HTTP 403)."""

    default_reason = Reason.ACCESS_DENIED


class Throttled(KMSError):
    retryable = True
    default_reason = Reason.THROTTLED


class Unavailable(KMSError):
    """The backend could not be reached or answered with a server error."""

    retryable = True
    default_reason = Reason.UNAVAILABLE
