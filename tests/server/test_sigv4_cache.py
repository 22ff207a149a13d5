"""The SigV4 signing-key cache: one derivation per principal, day and region, never a key shared across secrets."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from sigv4_support import BODY, SECRETS, signed

from kubekms.server.sigv4 import SigV4Verifier, signing_key
from kubekms.wire.aws_errors import InvalidSignature


def test_the_cached_key_signs_as_botocore_does() -> None:
    signer = SigV4Auth(BotoCredentials("AKALICE", "alice-secret"), "kms", "eu-west-1")
    request = AWSRequest(method="POST", url="http://127.0.0.1/", data=BODY)
    request.context["timestamp"] = "20261130T235959Z"  # the date botocore derives its key from
    key = signing_key("alice-secret", "20261130", "eu-west-1", "kms")
    assert hmac.new(key, b"to sign", hashlib.sha256).hexdigest() == signer.signature("to sign", request)
    assert key != signing_key("alice-secret", "20261201", "eu-west-1", "kms")


def test_a_principal_derives_its_key_once_per_day_and_region() -> None:
    verifier = SigV4Verifier(SECRETS.get)
    signing_key.cache_clear()
    verifier.verify("POST", "/", signed(), BODY)
    verifier.verify("POST", "/", signed(), BODY)
    verifier.verify("POST", "/", signed(region="us-east-1"), BODY)
    info = signing_key.cache_info()
    assert (info.misses, info.hits) == (2, 1)  # eu-west-1 once, reused once; us-east-1 derived anew


def test_a_wrong_secret_fails_while_the_right_key_is_cached() -> None:
    verifier = SigV4Verifier(SECRETS.get)
    verifier.verify("POST", "/", signed(), BODY)
    with pytest.raises(InvalidSignature):
        verifier.verify("POST", "/", signed(secret="not-alice-secret"), BODY)
