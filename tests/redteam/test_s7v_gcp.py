"""Adversarial review of CreateCryptoKeyVersion's algorithm check (8c0b7d3).

An enum field of a proto3 message is open: a client may send any number, and protobuf keeps it. The
check formats the refused algorithm with ``Algorithm(value).name``, which raises ValueError for a number
the enum does not name: the hostile request must get INVALID_ARGUMENT like any unsuited algorithm (not
an INTERNAL error with a traceback in the server's log), and nothing is made.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest
from google.cloud import kms_v1
from redteam_harness import message_call, with_crypto_key

from kubekms.devenv.gcpserver import GcpServer

PROJECT = "proj-s7v"
LOCATION = f"projects/{PROJECT}/locations/global"
KEY = f"{LOCATION}/keyRings/r/cryptoKeys/k"
OK = grpc.StatusCode.OK


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with with_crypto_key(tmp_path_factory.mktemp("s7v-gcp"), PROJECT) as running:
        yield running


@pytest.mark.filterwarnings("ignore:Unrecognized CryptoKeyVersionAlgorithm enum value")
def test_an_algorithm_number_no_enum_names_is_invalid_argument(gcp: GcpServer) -> None:
    version = kms_v1.CryptoKeyVersion(algorithm=9999)  # proto3 enums are open: the wire carries any number
    request = kms_v1.CreateCryptoKeyVersionRequest(parent=KEY, crypto_key_version=version)
    code, details = message_call(gcp, "CreateCryptoKeyVersion", request)
    assert code is grpc.StatusCode.INVALID_ARGUMENT, (code, details)
    code, answer = message_call(gcp, "ListCryptoKeyVersions", kms_v1.ListCryptoKeyVersionsRequest(parent=KEY))
    assert code is OK and isinstance(answer, bytes)
    versions = kms_v1.ListCryptoKeyVersionsResponse.deserialize(answer).crypto_key_versions
    assert [v.name for v in versions] == [f"{KEY}/cryptoKeyVersions/1"]
    assert "Traceback" not in gcp.server.log.read_text()
