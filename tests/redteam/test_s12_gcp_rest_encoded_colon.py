"""Red team (S12-H1) of the Cloud KMS REST mapping: a percent-encoded colon is no custom-verb separator.

The mapping already keeps ``%2F`` from becoming a path separator (test_s7z_gcp_rest): a proxy or audit rule that
matches paths must see the method the server runs. ``:`` separates a custom verb (``:encrypt``, ``:decrypt``,
``:destroy``) the same way, and ``k%3Adecrypt`` ran Decrypt where such a rule saw ``cryptoKeys/k%3Adecrypt``. No Cloud
KMS id holds a colon, so an encoded one names no resource: 404, as an encoded slash; encoded letters of a verb after a
literal colon are still read, as any encoded id character is.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redteam_harness import rest_call, with_crypto_key

from kubekms.devenv.gcpserver import GcpServer

PROJECT = "proj-s12c"
KEY = f"/v1/projects/{PROJECT}/locations/global/keyRings/r/cryptoKeys/k"


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with with_crypto_key(Path(tmp_path_factory.mktemp("s12-colon")), PROJECT) as running:
        yield running


def call(gcp: GcpServer, method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, object]]:
    return rest_call(gcp, method, path, body)


@pytest.mark.parametrize("colon", ["%3A", "%3a"])
def test_an_encoded_colon_runs_no_custom_verb(gcp: GcpServer, colon: str) -> None:
    status, answer = call(gcp, "POST", f"{KEY}{colon}encrypt", b'{"plaintext": "aGk="}')
    assert status == 404 and "ciphertext" not in answer, answer
    assert answer["error"]["status"] == "NOT_FOUND"  # type: ignore[index]
    status, answer = call(gcp, "POST", f"{KEY}/cryptoKeyVersions/1{colon}destroy", b"{}")
    assert status == 404 and "state" not in answer, answer
    status, version = call(gcp, "GET", f"{KEY}/cryptoKeyVersions/1")
    assert status == 200 and version["state"] == "ENABLED", version


def test_a_literal_colon_and_encoded_verb_letters_are_served(gcp: GcpServer) -> None:
    status, answer = call(gcp, "POST", f"{KEY}:encrypt", b'{"plaintext": "aGk="}')
    assert status == 200 and "ciphertext" in answer, answer
    status, answer = call(gcp, "POST", f"{KEY}:%65ncrypt", b'{"plaintext": "aGk="}')  # %65: e
    assert status == 200 and "ciphertext" in answer, answer
