"""Red team (H14) of the Cloud KMS REST mapping over raw HTTP: percent-encoded slashes in resource names."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redteam_harness import rest_call, with_crypto_key

from kubekms.devenv.gcpserver import GcpServer

PROJECT = "proj-s7z"
RING = f"/v1/projects/{PROJECT}/locations/global/keyRings/r"


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with with_crypto_key(Path(tmp_path_factory.mktemp("s7z-rest")), PROJECT) as running:
        yield running


def call(gcp: GcpServer, method: str, path: str, body: bytes | None = None) -> tuple[int, dict[str, object]]:
    return rest_call(gcp, method, path, body)


def test_the_plain_path_is_served(gcp: GcpServer) -> None:
    status, answer = call(gcp, "POST", f"{RING}/cryptoKeys/k:encrypt", b'{"plaintext": "aGVsbG8="}')
    assert status == 200 and "ciphertext" in answer


@pytest.mark.parametrize("slash", ["%2F", "%2f"])
def test_an_encoded_slash_is_part_of_one_id_not_a_path_separator(gcp: GcpServer, slash: str) -> None:
    # r%2FcryptoKeys%2Fk is no path of the API (no id holds a slash), not the key r/cryptoKeys/k: a proxy or an
    # audit rule that matches paths sees the resource the server acts on
    status, answer = call(gcp, "POST", f"{RING}{slash}cryptoKeys{slash}k:encrypt", b'{"plaintext": "aGVsbG8="}')
    assert status == 404 and "ciphertext" not in answer
    status, answer = call(gcp, "GET", f"{RING}{slash}cryptoKeys{slash}k")
    assert status == 404 and "purpose" not in answer
    assert answer["error"]["status"] == "NOT_FOUND"  # type: ignore[index]


def test_a_percent_encoded_id_character_is_decoded(gcp: GcpServer) -> None:
    status, answer = call(gcp, "GET", f"{RING}/cryptoKeys/%6B")  # %6B: k
    assert status == 200 and answer["name"] == f"{RING.removeprefix('/v1/')}/cryptoKeys/k"


def test_a_path_that_is_not_utf_8_is_refused_precisely(gcp: GcpServer) -> None:
    status, answer = call(gcp, "GET", f"{RING}/cryptoKeys/%FF")
    assert status == 400 and answer["error"]["status"] == "INVALID_ARGUMENT"  # type: ignore[index]
