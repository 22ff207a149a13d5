"""Red team (S12-H1) of the Cloud KMS REST listener: a body whose Content-Encoding does not decode.

aiohttp decodes gzip and deflate bodies as it reads them and raises when the bytes are not what the header says: the
REST mapping answered 500 "Server got itself in trouble" (text/plain, not Google's JSON error) with a traceback in the
server's log, and so did the token endpoint. A body that cannot be read is the client's error: 400 INVALID_ARGUMENT in
Google's JSON error body (the token endpoint: OAuth's ``invalid_request``), and the listener keeps serving.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
from collections.abc import Iterator

import pytest
from redteam_harness import bearer
from s8_support import gcp_with_token_endpoint

from kubekms.devenv.gcpserver import GcpServer

PROJECT = "proj-s12e"
RANDOM = f"/v1/projects/{PROJECT}/locations/global:generateRandomBytes"
GARBAGE = b"this is not what the header says"


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with gcp_with_token_endpoint(tmp_path_factory.mktemp("s12-enc"), PROJECT) as running:
        yield running


def post(gcp: GcpServer, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
    connection = http.client.HTTPConnection(gcp.rest_endpoint.removeprefix("http://"), timeout=10)
    try:
        connection.request("POST", path, body=body, headers=headers)
        answer = connection.getresponse()
        return answer.status, answer.getheader("Content-Type") or "", answer.read()
    finally:
        connection.close()


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_an_undecodable_api_body_is_invalid_argument(gcp: GcpServer, encoding: str) -> None:
    headers = {"Authorization": f"Bearer {bearer(gcp)}", "Content-Type": "application/json",
               "Content-Encoding": encoding}  # fmt: skip
    status, content_type, body = post(gcp, RANDOM, GARBAGE, headers)
    assert (status, content_type) == (400, "application/json"), (status, body)
    error = json.loads(body)["error"]
    assert error["status"] == "INVALID_ARGUMENT" and error["code"] == 400 and encoding in error["message"], error
    # the listener still serves, and a body that does decode is read
    status, _, body = post(gcp, RANDOM, gzip.compress(b'{"lengthBytes": 8}'), {**headers, "Content-Encoding": "gzip"})
    assert status == 200 and len(base64.b64decode(json.loads(body)["data"])) == 8, body
    assert "Traceback" not in gcp.server.log.read_text()


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_an_undecodable_token_request_is_an_oauth_error(gcp: GcpServer, encoding: str) -> None:
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": encoding}
    status, content_type, body = post(gcp, "/token", GARBAGE, headers)
    assert (status, content_type) == (400, "application/json"), (status, body)
    assert json.loads(body)["error"] == "invalid_request", body
    assert "Traceback" not in gcp.server.log.read_text()
