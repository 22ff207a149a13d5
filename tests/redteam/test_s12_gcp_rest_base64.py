"""Red team (S12-H1) of the Cloud KMS REST mapping: a bytes field's base64 is read strictly, as Google's front end
reads it ("Invalid value at 'plaintext' (TYPE_BYTES), Base64 decoding failed").

protobuf's JSON parser decodes base64 leniently: it drops characters outside the alphabet and any padding, so
``aGVsbG8gd29y*GQ=`` (one corrupted character of ``hello world``) became ``hello wor\\x19`` and was encrypted, MAC'd or
signed without a word. The refusal is INVALID_ARGUMENT and nothing is made; both of Google's alphabets (standard and
URL-safe), with or without padding, are still read.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from redteam_harness import rest_call, with_crypto_key

from kubekms.devenv.gcpserver import GcpServer

PROJECT = "proj-s12b"
RING = f"/v1/projects/{PROJECT}/locations/global/keyRings/r"
KEY = f"{RING}/cryptoKeys/k"
HELLO = base64.b64encode(b"hello world").decode()  # aGVsbG8gd29ybGQ=


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with with_crypto_key(Path(tmp_path_factory.mktemp("s12-b64")), PROJECT) as running:
        yield running


def call(gcp: GcpServer, method: str, path: str, payload: object) -> tuple[int, dict[str, object]]:
    return rest_call(gcp, method, path, None if payload is None else json.dumps(payload).encode())


def decrypt(gcp: GcpServer, ciphertext: str) -> bytes:
    status, answer = call(gcp, "POST", f"{KEY}:decrypt", {"ciphertext": ciphertext})
    assert status == 200, answer
    return base64.b64decode(str(answer["plaintext"]))


@pytest.mark.parametrize(
    "corrupted",
    [
        HELLO[:12] + "*" + HELLO[13:],  # one character outside both alphabets
        HELLO[:8] + " " + HELLO[8:],  # whitespace inside
        HELLO + "==",  # padding beyond a whole quantum
        HELLO[:-1] + "=AAAA",  # data after the padding
        "!!!!" + HELLO,  # leading garbage
        "aGVsbG8gd29ybGQ=\n",  # a line break
    ],
)
def test_corrupted_base64_is_invalid_argument_not_other_bytes(gcp: GcpServer, corrupted: str) -> None:
    status, answer = call(gcp, "POST", f"{KEY}:encrypt", {"plaintext": corrupted})
    assert status == 400 and "ciphertext" not in answer, answer
    error = answer["error"]
    assert isinstance(error, dict) and error["status"] == "INVALID_ARGUMENT"
    assert "plaintext" in error["message"] and "base64" in error["message"].lower(), error


def test_corrupted_base64_in_a_decrypt_s_aad_is_refused_too(gcp: GcpServer) -> None:
    status, answer = call(gcp, "POST", f"{KEY}:encrypt", {"plaintext": HELLO, "additionalAuthenticatedData": "YWFk"})
    assert status == 200, answer
    # "YW*Fk" read leniently is "YWFk" (aad): the decrypt would succeed with an AAD the client never meant
    status, answer = call(gcp, "POST", f"{KEY}:decrypt",
                          {"ciphertext": answer["ciphertext"], "additionalAuthenticatedData": "YW*Fk"})  # fmt: skip
    assert status == 400 and "plaintext" not in answer, answer
    assert answer["error"]["status"] == "INVALID_ARGUMENT"  # type: ignore[index]


@pytest.mark.parametrize(
    "encoded",
    [
        HELLO,  # standard, padded
        HELLO.rstrip("="),  # standard, unpadded
        base64.urlsafe_b64encode(b"\xfb\xff\xfe hello").decode(),  # URL-safe alphabet
        base64.urlsafe_b64encode(b"\xfb\xff\xfe hello").decode().rstrip("="),
        base64.b64encode(b"\xfb\xff\xfe hello").decode(),  # standard alphabet with + and /
    ],
)
def test_both_of_google_s_alphabets_with_or_without_padding_are_read(gcp: GcpServer, encoded: str) -> None:
    status, answer = call(gcp, "POST", f"{KEY}:encrypt", {"plaintext": encoded})
    assert status == 200, answer
    padded = (encoded + "=" * (-len(encoded) % 4)).replace("+", "-").replace("/", "_")
    assert decrypt(gcp, str(answer["ciphertext"])) == base64.urlsafe_b64decode(padded)
