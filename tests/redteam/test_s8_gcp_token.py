"""The Cloud KMS token endpoint and the JWT audience rules of today (gcp_token.py, gcp_auth.py), attacked.

The access token the endpoint answers is the assertion itself, so every rule on an assertion is a rule on a
bearer: what an assertion for Google's token URL, for another audience or with no scope may do here.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.cloud import kms_v1
from redteam_harness import raw_call
from s8_support import JWT_BEARER, KMS_SCOPE, gcp_with_token_endpoint, rest, signed_jwt, token_post

from kubekms.devenv.gcpserver import GcpServer
from kubekms.server.gcp_auth import GOOGLE_TOKEN_URI

PROJECT = "proj-s8-token"
LOCATION = f"projects/{PROJECT}/locations/global"
KMS_AUDIENCE = "https://cloudkms.googleapis.com/"


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with gcp_with_token_endpoint(tmp_path_factory.mktemp("s8-token"), PROJECT) as running:
        yield running


def _grpc_list(gcp: GcpServer, token: str) -> grpc.StatusCode:
    request = kms_v1.ListKeyRingsRequest(parent=LOCATION)
    return raw_call(gcp, "ListKeyRings", kms_v1.ListKeyRingsRequest.serialize(request), token)[0]


# found by this file and fixed by H2 in 87c83ae (it was a TypeError, 500 INTERNAL, since b3a323d)
@pytest.mark.parametrize("audience", [[KMS_AUDIENCE], {"aud": KMS_AUDIENCE}], ids=["list", "object"])
def test_a_signed_jwt_whose_aud_is_not_a_string_is_refused_not_an_internal_error(
    gcp: GcpServer, audience: object
) -> None:
    token = signed_jwt(gcp, aud=audience, scope=KMS_SCOPE)
    status, answer = rest(gcp, "GET", f"/v1/{LOCATION}/keyRings", token=token)
    assert (status, answer["error"]["status"]) == (401, "UNAUTHENTICATED"), answer
    assert _grpc_list(gcp, token) is grpc.StatusCode.UNAUTHENTICATED
    status, answer = token_post(gcp, {"grant_type": JWT_BEARER, "assertion": token})
    assert status == 400 and answer["error"] == "invalid_grant", answer


def test_an_assertion_for_a_token_endpoint_without_a_kms_scope_is_neither_exchanged_nor_a_bearer(
    gcp: GcpServer,
) -> None:
    # what google-auth's IDTokenCredentials signs (target_audience, no scope), and a scope of another API
    for claims in ({"target_audience": "https://run.example"}, {"scope": "https://www.googleapis.com/auth/devstorage"}):
        for audience in (GOOGLE_TOKEN_URI, f"{gcp.rest_endpoint}/token"):
            assertion = signed_jwt(gcp, aud=audience, **claims)
            status, answer = token_post(gcp, {"grant_type": JWT_BEARER, "assertion": assertion})
            assert status == 400 and answer["error"] == "invalid_grant", (claims, audience, answer)
            assert rest(gcp, "GET", f"/v1/{LOCATION}/keyRings", token=assertion)[0] == 401, (claims, audience)


def test_an_assertion_of_domain_wide_delegation_is_not_exchanged(gcp: GcpServer) -> None:
    # sub names a user the service account would act for (Google's domain-wide delegation): not this server's
    assertion = signed_jwt(gcp, aud=GOOGLE_TOKEN_URI, scope=KMS_SCOPE, sub="someone@example.com")
    status, answer = token_post(gcp, {"grant_type": JWT_BEARER, "assertion": assertion})
    assert status == 400 and answer["error"] == "invalid_grant", answer


def test_an_empty_aud_widens_nothing_beyond_a_missing_one(gcp: GcpServer) -> None:
    # "aud": "" (Go's scoped self-signed JWT) is taken as no aud: the KMS scope decides, and it is no assertion
    assert _grpc_list(gcp, signed_jwt(gcp, aud="")) is grpc.StatusCode.UNAUTHENTICATED
    scoped = signed_jwt(gcp, aud="", scope=KMS_SCOPE)
    assert _grpc_list(gcp, scoped) is grpc.StatusCode.OK
    status, answer = token_post(gcp, {"grant_type": JWT_BEARER, "assertion": scoped})
    assert status == 400 and answer["error"] == "invalid_grant", answer


def test_the_token_endpoint_takes_no_oversized_form(gcp: GcpServer) -> None:
    status, answer = token_post(gcp, {"grant_type": JWT_BEARER, "assertion": "a" * (300 * 1024)})
    assert status in (400, 413), (status, answer)
    assert "aaaa" not in str(answer)
