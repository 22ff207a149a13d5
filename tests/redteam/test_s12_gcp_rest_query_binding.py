"""Red team (S12-H1) of the Cloud KMS REST mapping: a query parameter sets no field the request body carries.

google.api.http: with ``body: "*"`` every field not bound by the path is in the body ("it is not possible to have HTTP
parameters"), and with ``body: "crypto_key"`` the query binds the fields outside crypto_key only. The mapping put
the query over the body: ``POST ...:encrypt?plaintext=...`` encrypted the query's plaintext, not the body's, and
``?additionalAuthenticatedData=`` replaced a Decrypt's AAD, so a proxy or audit rule reading the JSON body saw other
values than the server used. Such a parameter is now refused (INVALID_ARGUMENT) and nothing is done; the query's own
fields (update_mask) and the system parameters ($alt, alt) still pass.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from redteam_harness import rest_call, with_crypto_key

from kubekms.devenv.gcpserver import GcpServer

PROJECT = "proj-s12q"
KEY = f"/v1/projects/{PROJECT}/locations/global/keyRings/r/cryptoKeys/k"
BODY = {"plaintext": base64.b64encode(b"body").decode()}
OTHER = base64.b64encode(b"query").decode()


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with with_crypto_key(Path(tmp_path_factory.mktemp("s12-query")), PROJECT) as running:
        yield running


def call(gcp: GcpServer, method: str, path: str, payload: object = None) -> tuple[int, dict[str, object]]:
    return rest_call(gcp, method, path, None if payload is None else json.dumps(payload).encode())


def refused(status: int, answer: dict[str, object], parameter: str) -> bool:
    error = answer.get("error")
    return status == 400 and isinstance(error, dict) and error["status"] == "INVALID_ARGUMENT" and \
        parameter in error["message"]  # fmt: skip


@pytest.mark.parametrize("parameter", ["plaintext", "additionalAuthenticatedData", "additional_authenticated_data"])
def test_a_body_field_in_the_query_of_a_whole_body_method_is_refused(gcp: GcpServer, parameter: str) -> None:
    status, answer = call(gcp, "POST", f"{KEY}:encrypt?{parameter}={OTHER}", BODY)
    assert refused(status, answer, parameter) and "ciphertext" not in answer, answer


def test_a_decrypt_s_aad_comes_from_the_body_only(gcp: GcpServer) -> None:
    status, sealed = call(gcp, "POST", f"{KEY}:encrypt", {**BODY, "additionalAuthenticatedData": OTHER})
    assert status == 200, sealed
    status, answer = call(gcp, "POST", f"{KEY}:decrypt?additionalAuthenticatedData={OTHER}",
                          {"ciphertext": sealed["ciphertext"]})  # fmt: skip
    assert refused(status, answer, "additionalAuthenticatedData") and "plaintext" not in answer, answer


@pytest.mark.parametrize("parameter", ["cryptoKey.labels.owner", "crypto_key.labels.owner"])
def test_a_field_of_the_body_field_is_not_bound_from_the_query(gcp: GcpServer, parameter: str) -> None:
    status, answer = call(gcp, "PATCH", f"{KEY}?updateMask=labels&{parameter}=mallory", {"labels": {"team": "a"}})
    assert refused(status, answer, parameter), answer
    status, key = call(gcp, "GET", KEY)
    assert status == 200 and "owner" not in key.get("labels", {}), key  # type: ignore[operator]


def test_the_query_s_own_fields_and_system_parameters_still_pass(gcp: GcpServer) -> None:
    status, key = call(gcp, "PATCH", f"{KEY}?updateMask=labels&$alt=json;enum-encoding=int", {"labels": {"team": "b"}})
    assert status == 200 and key["labels"] == {"team": "b"} and key["purpose"] == 1, key
    status, sealed = call(gcp, "POST", f"{KEY}:encrypt?$alt=json%3Benum-encoding%3Dint&alt=json", BODY)
    assert status == 200 and sealed["protectionLevel"] == 1, sealed
