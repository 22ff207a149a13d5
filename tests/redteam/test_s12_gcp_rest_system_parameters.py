"""Red team (S12-H1) of the Cloud KMS REST mapping against Google's discovery-based clients.

google-api-python-client (``googleapiclient.discovery.build("cloudkms", "v1")``) adds ``alt=json`` to every request's
query, and the discovery document offers the other standard system parameters (``prettyPrint``, ``quotaUser``,
``fields``...) to every method. They are Google's front end's parameters, not fields of the request message: the REST
mapping refused each as an unknown field, so every call of such a client was a 400. They are now taken as Google takes
them (``alt`` must be ``json``: this server answers nothing else), and they change nothing else of the call.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from redteam_harness import rest_call, with_crypto_key

from kubekms.devenv.gcpserver import GcpServer

PROJECT = "proj-s12s"
RING = f"/v1/projects/{PROJECT}/locations/global/keyRings/r"
KEY = f"{RING}/cryptoKeys/k"


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with with_crypto_key(Path(tmp_path_factory.mktemp("s12-sys")), PROJECT) as running:
        yield running


def call(gcp: GcpServer, method: str, path: str, payload: object = None) -> tuple[int, dict[str, object]]:
    return rest_call(gcp, method, path, None if payload is None else json.dumps(payload).encode())


def test_what_googleapiclient_sends_is_served(gcp: GcpServer) -> None:
    status, key = call(gcp, "GET", f"{KEY}?alt=json")
    assert status == 200 and key["name"] == KEY.removeprefix("/v1/"), key
    status, listed = call(gcp, "GET", f"{RING}/cryptoKeys?pageSize=5&alt=json")
    assert status == 200 and [k["name"] for k in listed["cryptoKeys"]] == [KEY.removeprefix("/v1/")], listed  # type: ignore[union-attr]
    status, sealed = call(gcp, "POST", f"{KEY}:encrypt?alt=json", {"plaintext": base64.b64encode(b"hi").decode()})
    assert status == 200 and "ciphertext" in sealed, sealed
    status, opened = call(gcp, "POST", f"{KEY}:decrypt?alt=json", {"ciphertext": sealed["ciphertext"]})
    assert status == 200 and base64.b64decode(str(opened["plaintext"])) == b"hi", opened


@pytest.mark.parametrize(
    "query", ["prettyPrint=false", "quotaUser=someone", "fields=name,primary", "userIp=10.0.0.1", "$.xgafv=2"]
)
def test_the_other_standard_parameters_change_nothing(gcp: GcpServer, query: str) -> None:
    status, plain = call(gcp, "GET", KEY)
    assert status == 200, plain
    assert call(gcp, "GET", f"{KEY}?{query}&alt=json") == (200, plain)


def test_numeric_enums_may_be_asked_for_in_alt_too(gcp: GcpServer) -> None:
    status, key = call(gcp, "GET", f"{KEY}?alt=json%3Benum-encoding%3Dint")
    assert status == 200 and key["purpose"] == 1, key


@pytest.mark.parametrize("alt", ["proto", "media", "sse"])
def test_an_answer_format_this_server_does_not_give_is_refused_precisely(gcp: GcpServer, alt: str) -> None:
    status, answer = call(gcp, "GET", f"{KEY}?alt={alt}")
    assert status == 400 and answer["error"]["status"] == "INVALID_ARGUMENT", answer  # type: ignore[index]
    assert "alt" in answer["error"]["message"], answer  # type: ignore[index]


def test_a_field_of_the_message_is_still_a_field(gcp: GcpServer) -> None:
    status, answer = call(gcp, "GET", f"{RING}/cryptoKeys?notAField=1&alt=json")
    assert status == 400 and answer["error"]["status"] == "INVALID_ARGUMENT", answer  # type: ignore[index]
