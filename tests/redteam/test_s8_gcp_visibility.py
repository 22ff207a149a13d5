"""A crypto key without a primary version (ASYMMETRIC_SIGN, ASYMMETRIC_DECRYPT, MAC: abc613c, 5e5129d) is seen
whole by a caller whose key policies deny it every one of its versions (fixed in session 8: such a key is
visible only if the caller may describe at least one of its versions).

A symmetric key whose primary denies the caller is left out of ListCryptoKeys, uncounted in total_size
(3e0508e, AIP-158) and PERMISSION_DENIED on GetCryptoKey (s7). The same Deny on every version of a MAC or
signing key hides nothing: its name, labels, purpose and algorithm are listed, counted and answered, because
visibility is decided by the primary alone and these keys never have one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from gcp_policy_support import deny_version
from s8_support import rest, signed_jwt

from kubekms.devenv.gcpserver import GcpServer, gcp_server
from kubekms.devenv.kmsserver import Principal

PROJECT = "proj-s8-vis"
RING = f"projects/{PROJECT}/locations/global/keyRings/r"
AUDIENCE = "https://cloudkms.googleapis.com/"
PRINCIPALS = (Principal("lister", actions=("list-keys", "describe-key"), projects=(PROJECT,)),
              Principal("owner", projects=(PROJECT,)))  # fmt: skip
TEMPLATES: dict[str, dict[str, Any]] = {
    "sym": {"purpose": "ENCRYPT_DECRYPT"},
    "mac": {"purpose": "MAC", "versionTemplate": {"algorithm": "HMAC_SHA256"}},
    "sig": {"purpose": "ASYMMETRIC_SIGN", "versionTemplate": {"algorithm": "EC_SIGN_P256_SHA256"}},
}


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with gcp_server(tmp_path_factory.mktemp("s8-vis"), project_id=PROJECT, principals=PRINCIPALS) as running:
        admin = signed_jwt(running, aud=AUDIENCE)
        assert rest(running, "POST", f"/v1/{RING.rsplit('/', 2)[0]}/keyRings?keyRingId=r", token=admin,
                    body=b"{}")[0] == 200  # fmt: skip
        for key, template in TEMPLATES.items():
            body = json.dumps({**template, "labels": {"team": "hidden-project"}}).encode()
            assert rest(running, "POST", f"/v1/{RING}/cryptoKeys?cryptoKeyId={key}", token=admin, body=body)[0] == 200
            deny_version(running, PROJECT, f"r/{key}", 1, ["lister"])  # its only version
        yield running


def test_a_symmetric_key_whose_versions_deny_the_caller_is_hidden(gcp: GcpServer) -> None:
    lister = signed_jwt(gcp, "lister", aud=AUDIENCE)
    assert rest(gcp, "GET", f"/v1/{RING}/cryptoKeys/sym", token=lister)[0] == 403
    status, page = rest(gcp, "GET", f"/v1/{RING}/cryptoKeys", token=lister)
    assert status == 200 and f"{RING}/cryptoKeys/sym" not in {key["name"] for key in page.get("cryptoKeys", [])}


@pytest.mark.parametrize("key", ["mac", "sig"])
def test_a_key_without_a_primary_whose_versions_all_deny_the_caller_is_hidden_too(gcp: GcpServer, key: str) -> None:
    lister = signed_jwt(gcp, "lister", aud=AUDIENCE)
    status, page = rest(gcp, "GET", f"/v1/{RING}/cryptoKeys", token=lister)
    assert status == 200
    assert f"{RING}/cryptoKeys/{key}" not in {listed["name"] for listed in page.get("cryptoKeys", [])}, page
    assert page.get("totalSize", 0) == 0, page
    status, answer = rest(gcp, "GET", f"/v1/{RING}/cryptoKeys/{key}", token=lister)
    assert status == 403 and "hidden-project" not in json.dumps(answer), answer
