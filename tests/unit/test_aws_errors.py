"""The AWS error table, both directions, and the provider's mapping of botocore failures.

The botocore exceptions here are built by hand: throttling, KMS internal errors and dependency
timeouts cannot be caused against our server or moto, so this is the one place they are exercised.
"""

from __future__ import annotations

import botocore.exceptions
import pytest

from kubekms import errors
from kubekms.providers.aws_mapping import map_client_error
from kubekms.wire.aws_errors import AWS_ERROR_CLASSES, IncorrectKey, InvalidSignature, aws_error_type


def client_error(code: str, message: str = "", status: int = 400) -> botocore.exceptions.ClientError:
    response = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return botocore.exceptions.ClientError(response, "GenerateDataKey")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "expected", "retryable"),
    [
        ("NotFoundException", errors.NotFound, False),
        ("DisabledException", errors.Disabled, False),
        ("KMSInvalidStateException", errors.InvalidState, False),
        ("InvalidCiphertextException", errors.InvalidCiphertext, False),
        ("IncorrectKeyException", errors.InvalidCiphertext, False),
        ("AlreadyExistsException", errors.AlreadyExists, False),
        ("LimitExceededException", errors.LimitExceeded, False),
        ("ValidationException", errors.InvalidArgument, False),
        ("AccessDeniedException", errors.AccessDenied, False),
        ("UnrecognizedClientException", errors.Unauthenticated, False),
        ("ThrottlingException", errors.Throttled, True),
        ("KMSInternalException", errors.Unavailable, True),
        ("DependencyTimeoutException", errors.Unavailable, True),
        ("KeyUnavailableException", errors.Unavailable, True),
    ],
)
def test_each_aws_error_maps_to_one_class(code: str, expected: type[errors.KMSError], retryable: bool) -> None:
    mapped = map_client_error("generate_data_key", client_error(code, "some message"))
    assert type(mapped) is expected
    assert mapped.retryable is retryable
    assert mapped.message == f"AWS KMS generate_data_key: {code}: some message"


def test_invalid_state_on_a_pending_key_is_pending_deletion() -> None:
    message = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd is pending deletion."
    assert type(map_client_error("encrypt", client_error("KMSInvalidStateException", message))) is (
        errors.PendingDeletion
    )


def test_unknown_types_fall_back_by_status() -> None:
    assert type(map_client_error("x", client_error("SomethingNew", status=503))) is errors.Unavailable
    assert type(map_client_error("x", client_error("SomethingNew", status=403))) is errors.AccessDenied
    assert type(map_client_error("x", client_error("SomethingNew", status=400))) is errors.InvalidArgument


def test_transport_and_credential_failures() -> None:
    refused = botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
    assert type(map_client_error("list_keys", refused)) is errors.Unavailable
    assert type(map_client_error("list_keys", botocore.exceptions.NoCredentialsError())) is errors.Unauthenticated
    assert type(map_client_error("list_keys", botocore.exceptions.NoRegionError())) is errors.InvalidArgument


@pytest.mark.parametrize(
    ("error", "aws_type"),
    [
        (errors.Disabled("x"), "DisabledException"),
        (errors.PendingDeletion("x"), "KMSInvalidStateException"),
        (errors.InvalidState("x"), "KMSInvalidStateException"),
        (errors.NotFound("x"), "NotFoundException"),
        (errors.AlreadyExists("x"), "AlreadyExistsException"),
        (errors.LimitExceeded("x"), "LimitExceededException"),
        (errors.InvalidCiphertext("x"), "InvalidCiphertextException"),
        (IncorrectKey("x"), "IncorrectKeyException"),
        (errors.InvalidArgument("x"), "ValidationException"),
        (errors.AccessDenied("x"), "AccessDeniedException"),
        (InvalidSignature("x"), "InvalidSignatureException"),
        (errors.Unauthenticated("x"), "UnrecognizedClientException"),
        (errors.Unauthenticated("x", reason=errors.Reason.CREDENTIAL_MISSING), "MissingAuthenticationTokenException"),
        (errors.Throttled("x"), "ThrottlingException"),
        (errors.Unavailable("x"), "KMSInternalException"),
        (errors.KMSError("x"), "KMSInternalException"),
    ],
)
def test_our_errors_answer_as_aws_does(error: errors.KMSError, aws_type: str) -> None:
    error_type, status = aws_error_type(error)
    assert error_type == aws_type
    assert status == (500 if aws_type == "KMSInternalException" else 400)
    if type(error) is not errors.KMSError:  # the provider maps the answer back onto the same family
        assert isinstance(error, AWS_ERROR_CLASSES[error_type])


def test_validation_errors_never_quote_values() -> None:
    secret = "0123456789abcdef-plaintext"
    report = f"Invalid type for parameter Plaintext, value: {secret}, type: <class 'str'>, valid types: <class 'bytes'>"
    mapped = map_client_error("encrypt", botocore.exceptions.ParamValidationError(report=report))
    assert type(mapped) is errors.InvalidArgument
    assert secret not in mapped.message and "Plaintext" in mapped.message
