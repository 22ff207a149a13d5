"""Provider ``aws``: the pure mapping between the backend protocol and the AWS KMS API.

AWS's ranges, alias and key-reference forms, the aad <-> EncryptionContext rule, key states,
and botocore failures -> :mod:`kubekms.errors` (with the protocol's codes where AWS has one
exception for several refusals). No I/O here; :mod:`kubekms.providers.aws` makes the calls.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import NoReturn

import botocore.exceptions

from kubekms.backend import KeyState
from kubekms.errors import AccessDenied, InvalidArgument, InvalidState, KMSError, Reason, Unauthenticated, Unavailable
from kubekms.naming import is_alias, is_key_id
from kubekms.providers.backend_text import MAX_CODE, backend_text
from kubekms.wire.aws_errors import aws_error_class, aws_error_reason
from kubekms.wire.aws_rules import ALIAS_NAME_PATTERN

AAD_CONTEXT_KEY = "kubekms:aad"
# AWS answers KMSInvalidStateException for every refused transition; the protocol's reasons say which
STATE_REASONS = {
    "schedule_key_deletion": Reason.ALREADY_PENDING_DELETION,
    "cancel_key_deletion": Reason.NOT_PENDING_DELETION,
}

AWS_STATES = {
    "Enabled": KeyState.ENABLED,
    "Disabled": KeyState.DISABLED,
    "PendingDeletion": KeyState.PENDING_DELETION,
    "PendingImport": KeyState.PENDING_IMPORT,
    "Creating": KeyState.PENDING_ACTIVATION,
    "Unavailable": KeyState.DISABLED,
    "Updating": KeyState.ENABLED,
    "PendingReplicaDeletion": KeyState.PENDING_DELETION,
}


def check_range(name: str, value: int, bounds: tuple[int, int], reason: Reason = Reason.INVALID_ARGUMENT) -> None:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgument(f"AWS KMS allows {name} from {low} to {high}, got {value!r}", reason=reason)


def check_alias(alias: str) -> None:
    """The protocol's alias rules and AWS's (``alias/`` + 1-250 of [a-zA-Z0-9/_-], not ``aws/``), before any call."""
    if not is_alias(alias) or not ALIAS_NAME_PATTERN.fullmatch(alias) or alias.startswith("aws/"):
        raise InvalidArgument(
            f"invalid alias {alias!r} for AWS KMS: 1-250 of [a-zA-Z0-9/_-], not ending in /default,"
            " not a key id, not starting with aws/",
            reason=Reason.ALIAS_INVALID,
        )


def aws_key_ref(ref: str) -> str:
    """Key id, key ARN and alias ARN pass; anything else is a protocol alias: ``x`` -> ``alias/x``."""
    if not ref:
        raise InvalidArgument("a key id or alias is required")
    if is_key_id(ref) or ref.startswith(("arn:", "mrk-")):
        return ref
    return f"alias/{ref}"


def key_id_of(arn_or_id: str) -> str:
    """``arn:aws:kms:r:a:key/<id>`` -> ``<id>``."""
    return arn_or_id.rpartition("key/")[2] if arn_or_id.startswith("arn:") else arn_or_id


def encryption_context(aad: bytes) -> dict[str, str]:
    return {AAD_CONTEXT_KEY: base64.b64encode(aad).decode()} if aad else {}


def utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC) if moment is not None else None


def tags_to_aws(tags: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"TagKey": key, "TagValue": value} for key, value in tags.items()]


def map_client_error(operation: str, error: Exception) -> KMSError:
    """Any boto3/botocore failure -> our hierarchy; the message names the AWS type, never request data."""
    if isinstance(error, botocore.exceptions.ClientError):
        details = error.response.get("Error", {})
        error_type = str(details.get("Code", ""))
        message = str(details.get("Message", ""))
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400))
        # the backend's own words, bounded and escaped: callers copy them into statuses, logs and terminals
        text = f"AWS KMS {operation}: {backend_text(error_type, MAX_CODE)}"
        text += f": {backend_text(message)}" if message else ""
        error_class = aws_error_class(error_type, message, status)
        in_state = issubclass(error_class, InvalidState)
        return error_class(text, reason=STATE_REASONS.get(operation) if in_state else aws_error_reason(error_type))
    if isinstance(error, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError):
        return Unauthenticated(f"AWS KMS {operation}: no AWS credentials found")
    if isinstance(error, botocore.exceptions.NoRegionError):
        return InvalidArgument("provider 'aws' needs a region (config region or AWS_REGION)")
    if isinstance(error, botocore.exceptions.ParamValidationError):
        # botocore's report quotes the values (a Plaintext among them): name the parameters only
        names = sorted(set(re.findall(r"parameter (\w+)", str(error)))) or ["(unknown)"]
        return InvalidArgument(f"AWS KMS {operation}: invalid parameter(s) {', '.join(names)}")
    return Unavailable(f"AWS KMS {operation}: {type(error).__name__}")


class UnreadableTags(Mapping[str, str]):
    """A described key's tags when kms:ListResourceTags was refused: reading them raises that AccessDenied.

    Not an empty mapping: a caller deciding by tags (the operator's owner and rotate-request
    tags) must not take "may not read" for "none". Callers that never read tags (the plugin's
    least-privilege describe) are unaffected; comparing or printing the metadata does not read them.
    """

    def __init__(self, refusal: AccessDenied) -> None:
        self._refusal = refusal

    def _refuse(self) -> NoReturn:
        raise AccessDenied(
            f"the key's tags cannot be read: {self._refusal.message}",
            reason=self._refusal.reason,
            code=self._refusal.code,
        )

    def __getitem__(self, name: str) -> str:
        self._refuse()

    def __iter__(self) -> Iterator[str]:
        self._refuse()

    def __len__(self) -> int:
        self._refuse()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, UnreadableTags)

    def __repr__(self) -> str:
        return "UnreadableTags(kms:ListResourceTags refused)"
