"""Lists count only what the caller may see (AIP-158, AIP-211): total_size, page sizes and page tokens.

A crypto key whose primary version's key policy denies the caller kms:DescribeKey (and a version so denied)
is left out of its lists; total_size must not count it (a count of hidden keys is itself a disclosure) and a
page must hold page_size visible items while more remain, so page boundaries do not reveal where hidden ones sit.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from gcp_harness import client, put_version_policy
from google.cloud import kms_v1

from kubekms.devenv.gcpserver import GcpServer, gcp_server
from kubekms.devenv.kmsserver import Principal

PROJECT = "proj-visible"
LOCATION = f"projects/{PROJECT}/locations/global"
RING = f"{LOCATION}/keyRings/r"
LISTER = Principal("lister", actions=("list-keys", "describe-key"), projects=(PROJECT,))
OWNER = Principal("owner", projects=(PROJECT,))  # its AWS wire calls act in PROJECT
KEYS = ("a", "b", "c", "d", "e")


def _deny(gcp: GcpServer, key: str, version: int, denied: str) -> None:
    """A key policy on the version's keystore key (through the AWS wire) denying ``denied`` everything."""
    deny = {"Effect": "Deny", "Principal": {"AWS": f"arn:aws:iam::{PROJECT}:user/{denied}"}, "Action": "kms:*",
            "Resource": "*"}  # fmt: skip
    put_version_policy(gcp, PROJECT, f"gcp/global/r/{key}/{version}", [deny])


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with gcp_server(tmp_path_factory.mktemp("kms-visible"), principals=(LISTER, OWNER), project_id=PROJECT) as running:
        admin = client(running, "admin")
        admin.create_key_ring(request={"parent": LOCATION, "key_ring_id": "r"})
        for key in KEYS:
            admin.create_crypto_key(request={"parent": RING, "crypto_key_id": key, "crypto_key": {
                "purpose": kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT}})  # fmt: skip
        for _ in range(3):  # a: versions 1 (primary) to 4
            admin.create_crypto_key_version(request={"parent": f"{RING}/cryptoKeys/a", "crypto_key_version": {}})
        _deny(running, "b", 1, "lister")  # b's primary
        _deny(running, "c", 1, "lister")
        _deny(running, "a", 2, "lister")  # not a's primary
        _deny(running, "a", 3, "lister")
        yield running


def _pages(gcp: GcpServer, principal: str, method: str, parent: str, page_size: int) -> list[tuple[list[str], int]]:
    """(names, total_size) of every page, following next_page_token."""
    kms = client(gcp, principal)
    list_method: Any
    if method == "ListCryptoKeys":
        list_method, field = kms.list_crypto_keys, "crypto_keys"
    else:
        list_method, field = kms.list_crypto_key_versions, "crypto_key_versions"
    pages, token = [], ""
    for _ in range(20):
        page = list_method(request={"parent": parent, "page_size": page_size, "page_token": token}).pages
        response = next(iter(page)).raw_page  # this one page only: the pager would follow the token itself
        pages.append(([item.name.rsplit("/", 1)[1] for item in getattr(response, field)], response.total_size))
        token = response.next_page_token
        if not token:
            return pages
    raise AssertionError("the page tokens never ended")


def test_total_size_and_pages_count_only_the_crypto_keys_the_caller_may_see(gcp: GcpServer) -> None:
    assert _pages(gcp, "lister", "ListCryptoKeys", RING, 2) == [(["a", "d"], 3), (["e"], 3)]
    assert _pages(gcp, "lister", "ListCryptoKeys", RING, 0) == [(["a", "d", "e"], 3)]
    assert _pages(gcp, "admin", "ListCryptoKeys", RING, 2) == [(["a", "b"], 5), (["c", "d"], 5), (["e"], 5)]


def test_total_size_and_pages_count_only_the_versions_the_caller_may_see(gcp: GcpServer) -> None:
    key = f"{RING}/cryptoKeys/a"
    assert _pages(gcp, "lister", "ListCryptoKeyVersions", key, 1) == [(["1"], 2), (["4"], 2)]
    assert _pages(gcp, "admin", "ListCryptoKeyVersions", key, 3) == [(["1", "2", "3"], 4), (["4"], 4)]


def test_a_filter_and_an_order_see_only_what_the_caller_may_see(gcp: GcpServer) -> None:
    """Hidden keys are left out before the filter runs: matching every key, a filter still counts the visible ones."""
    kms = client(gcp, "lister")
    keys = kms.list_crypto_keys(request={"parent": RING, "filter": "name:cryptoKeys", "order_by": "name desc"}).raw_page
    assert ([key.name.rsplit("/", 1)[1] for key in keys.crypto_keys], keys.total_size) == (["e", "d", "a"], 3)
    versions = kms.list_crypto_key_versions(
        request={"parent": f"{RING}/cryptoKeys/a", "filter": "state=ENABLED", "order_by": "create_time desc"}
    ).raw_page
    assert sorted(v.name.rsplit("/", 1)[1] for v in versions.crypto_key_versions) == ["1", "4"]
    assert versions.total_size == 2
