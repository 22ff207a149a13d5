"""The direct canonical request of ``POST /`` is botocore's, byte for byte; other targets still verify.

botocore's signer is the oracle: for generated header sets (names, values with inner runs of
spaces and tabs, leading and trailing blanks) and bodies, :func:`canonical_post_root` must build
the canonical request botocore's ``SigV4Auth.canonical_request`` builds, and a request signed by
botocore with a query string (which takes botocore's builder) must still verify.
"""

from __future__ import annotations

import hashlib
import random

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from multidict import CIMultiDict
from sigv4_support import BODY, HOST, SECRETS, signed

from kubekms.server.sigv4 import SigV4Verifier, canonical_post_root
from kubekms.wire.aws_errors import InvalidSignature

# names the verifier lets a client sign (botocore leaves user-agent, expect, x-amzn-trace-id out; so does the verifier)
NAMES = ("content-type", "host", "x-amz-content-sha256", "x-amz-date", "x-amz-target", "x-custom", "x-z")
PIECES = ("a", "b1", "TrentService.Decrypt", "x/y=z", "%20", ";", ",", "  ", "\t", " \t ")


def botocore_canonical(values: dict[str, str], body: bytes) -> str:
    request = AWSRequest(method="POST", url=f"http://{values['host']}/", headers=values, data=body)
    return SigV4Auth(BotoCredentials("AK", "SK"), "kms", "eu-west-1").canonical_request(request)


@pytest.mark.parametrize("seed", range(300))
def test_the_direct_canonical_request_is_botocores(seed: int) -> None:
    generated = random.Random(seed)
    names = sorted({"host", *generated.sample(NAMES, generated.randint(1, len(NAMES)))})
    values = {name: "".join(generated.choices(PIECES, k=generated.randint(1, 6))) for name in names}
    values["host"] = HOST
    body = generated.randbytes(generated.randint(0, 64))
    if "x-amz-content-sha256" in values:  # the verifier refused any other value before building the request
        values["x-amz-content-sha256"] = hashlib.sha256(body).hexdigest()
    assert canonical_post_root(values, body) == botocore_canonical(values, body)


def test_a_request_with_a_query_string_verifies_by_botocores_builder() -> None:
    request = AWSRequest(method="POST", url=f"http://{HOST}/?b=2&a=x%20y", data=BODY,
                         headers={"X-Amz-Target": "TrentService.GenerateDataKey"})  # fmt: skip
    SigV4Auth(BotoCredentials("AKALICE", SECRETS["AKALICE"]), "kms", "eu-west-1").add_auth(request)
    headers = CIMultiDict(request.headers.items())
    headers["Host"] = HOST
    verifier = SigV4Verifier(SECRETS.get)
    assert verifier.verify("POST", "/?b=2&a=x%20y", headers, BODY).access_key == "AKALICE"
    with pytest.raises(InvalidSignature):  # the query is signed: another one fails
        verifier.verify("POST", "/?b=3&a=x%20y", headers, BODY)
    with pytest.raises(InvalidSignature):  # and so is its absence
        verifier.verify("POST", "/", headers, BODY)


def test_a_signed_header_with_inner_blanks_verifies_and_a_changed_one_fails() -> None:
    headers = signed()
    verifier = SigV4Verifier(SECRETS.get)
    assert verifier.verify("POST", "/", headers, BODY).region == "eu-west-1"
    headers["X-Amz-Target"] = "TrentService.Decrypt"
    with pytest.raises(InvalidSignature):
        verifier.verify("POST", "/", headers, BODY)
    with pytest.raises(InvalidSignature):
        verifier.verify("PUT", "/", signed(), BODY)  # the method is signed: PUT takes botocore's builder and fails


@pytest.mark.parametrize("header", ["X-Amz-Target", "x-amz-content-sha256", "X-Amz-Anything"])
def test_an_unsigned_x_amz_header_is_refused(header: str) -> None:
    """AWS: the host header and any x-amz-* header must be signed. Unsigned, X-Amz-Target (the operation)
    could be swapped on a captured request within the 15 minutes (a GenerateDataKey replayed as a DisableKey)."""
    request = AWSRequest(method="POST", url=f"http://{HOST}/", data=BODY)
    SigV4Auth(BotoCredentials("AKALICE", SECRETS["AKALICE"]), "kms", "eu-west-1").add_auth(request)
    headers = CIMultiDict(request.headers.items())
    headers["Host"] = HOST
    verifier = SigV4Verifier(SECRETS.get)
    assert verifier.verify("POST", "/", headers, BODY).access_key == "AKALICE"  # signed as it is: verifies
    headers[header] = hashlib.sha256(BODY).hexdigest() if header.endswith("sha256") else "TrentService.DisableKey"
    with pytest.raises(InvalidSignature, match="must be signed"):
        verifier.verify("POST", "/", headers, BODY)
