"""Red team (S12-H1) of the Cloud KMS list methods: an answer is cut to fit the gRPC listener's message limit.

The listener sends at most 256 KiB a message, and a list page was up to page_size (default 1000) resources whatever
their size: a key ring of 40 crypto keys with 64 labels each (or some 750 without labels; a key of a few years of
daily rotation has as many versions) answered RESOURCE_EXHAUSTED "Sent message larger than max" to every list,
the official client's pager included (its default page_size is 0), with a traceback in the server's log. AIP-158 lets
a page hold fewer than page_size: the page now ends before the one that would not fit, with its next_page_token.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.cloud import kms_v1
from redteam_harness import message_call, with_crypto_key

from kubekms.devenv.gcpserver import GcpServer
from kubekms.server.gcp_grpc import MAX_MESSAGE_BYTES

PROJECT = "proj-s12l"
RING = f"projects/{PROJECT}/locations/global/keyRings/r"
KEYS = 40
LABELS = {f"l{i:02d}" + "x" * 59: "v" * 63 for i in range(64)}  # Cloud KMS's most: 64 labels of 63 characters


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with with_crypto_key(Path(tmp_path_factory.mktemp("s12-list")), PROJECT) as running:
        for index in range(KEYS):
            key = kms_v1.CryptoKey(purpose=kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT, labels=LABELS)
            create = kms_v1.CreateCryptoKeyRequest(parent=RING, crypto_key_id=f"big{index:02d}", crypto_key=key,
                                                   skip_initial_version_creation=True)  # fmt: skip
            assert message_call(running, "CreateCryptoKey", create)[0] is grpc.StatusCode.OK
        yield running


def list_page(
    gcp: GcpServer, token: str, page_size: int = 0, query: dict[str, str] | None = None
) -> tuple[kms_v1.ListCryptoKeysResponse, int]:
    request = kms_v1.ListCryptoKeysRequest(parent=RING, page_token=token, page_size=page_size, **(query or {}))
    code, answer = message_call(gcp, "ListCryptoKeys", request)
    assert code is grpc.StatusCode.OK and isinstance(answer, bytes), (code, answer)
    return kms_v1.ListCryptoKeysResponse.deserialize(answer), len(answer)


@pytest.mark.parametrize("page_size", [0, 1000, 30])
def test_a_ring_of_large_keys_is_listed_page_by_page(gcp: GcpServer, page_size: int) -> None:
    names, token, pages = [], "", 0
    while True:
        page, size = list_page(gcp, token, page_size)
        assert size <= MAX_MESSAGE_BYTES and page.total_size == KEYS + 1
        assert page.crypto_keys, "a page that stops early still holds at least one resource"
        names += [key.name for key in page.crypto_keys]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert pages > 1  # 41 keys of about 9 KB do not fit one answer
    assert sorted(names) == sorted({f"{RING}/cryptoKeys/k", *(f"{RING}/cryptoKeys/big{i:02d}" for i in range(KEYS))})
    assert "Traceback" not in gcp.server.log.read_text()


def test_a_filtered_and_ordered_list_is_cut_too(gcp: GcpServer) -> None:
    query = {"filter": "name:big", "order_by": "name desc"}
    names, token = [], ""
    while True:
        page, size = list_page(gcp, token, 0, query)
        assert size <= MAX_MESSAGE_BYTES and page.total_size == KEYS and page.crypto_keys
        names += [key.name for key in page.crypto_keys]
        token = page.next_page_token
        if not token:
            break
    assert names == [f"{RING}/cryptoKeys/big{i:02d}" for i in reversed(range(KEYS))]


def test_a_page_that_fits_is_not_cut(gcp: GcpServer) -> None:
    page, _ = list_page(gcp, "", 5)
    assert len(page.crypto_keys) == 5 and page.next_page_token == "5"
