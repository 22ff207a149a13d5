"""List filter and order_by as Cloud KMS takes them (cloud.google.com/kms/docs/sorting-and-filtering), through the
official client over gRPC and REST: comparisons on fields, subfields and labels, OR binding tighter than AND, NOT and
``-``, case-insensitive containment, times as RFC 3339; the page and total_size over what matches; refusals in words."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from gcp_harness import client, credentials
from google.api_core import exceptions
from google.cloud import kms_v1

from kubekms.devenv.gcpserver import GcpServer, gcp_server
from kubekms.devenv.kmsserver import Principal
from kubekms.server.gcp_filters import MAX_DEPTH, MAX_QUERY_CHARS

PROJECT = "proj-filters"
LOCATION = f"projects/{PROJECT}/locations/global"
RING = f"{LOCATION}/keyRings/r"
Purpose = kms_v1.CryptoKey.CryptoKeyPurpose
# name -> (purpose, team label or None)
KEYS = {"k0": (Purpose.ENCRYPT_DECRYPT, "alpha"), "k1": (Purpose.ENCRYPT_DECRYPT, "beta"),
        "k2": (Purpose.ENCRYPT_DECRYPT, "alpha"), "mac": (Purpose.MAC, None)}  # fmt: skip


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    owner = Principal("owner", projects=(PROJECT,))
    with gcp_server(tmp_path_factory.mktemp("filters"), principals=(owner,), project_id=PROJECT) as running:
        admin = client(running)
        for ring in ("r", "other"):
            admin.create_key_ring(request={"parent": LOCATION, "key_ring_id": ring})
        for key, (purpose, team) in KEYS.items():
            template: dict[str, Any] = {"purpose": purpose, "labels": {"team": team} if team else {}}
            if purpose == Purpose.MAC:
                template["version_template"] = {
                    "algorithm": kms_v1.CryptoKeyVersion.CryptoKeyVersionAlgorithm.HMAC_SHA256
                }
            admin.create_crypto_key(request={"parent": RING, "crypto_key_id": key, "crypto_key": template})
        for _ in range(2):
            admin.create_crypto_key_version(request={"parent": f"{RING}/cryptoKeys/k0", "crypto_key_version": {}})
        admin.destroy_crypto_key_version(request={"name": f"{RING}/cryptoKeys/k0/cryptoKeyVersions/2"})
        yield running


@pytest.fixture(scope="module", params=["grpc", "rest"])
def kms(request: pytest.FixtureRequest, gcp: GcpServer) -> kms_v1.KeyManagementServiceClient:
    if request.param == "grpc":
        return client(gcp)
    return kms_v1.KeyManagementServiceClient(
        credentials=credentials(gcp), client_options={"api_endpoint": gcp.rest_endpoint}, transport="rest"
    )


def _ids(resources: Iterable[Any]) -> list[str]:
    return [resource.name.rsplit("/", 1)[1] for resource in resources]


def _keys(kms: kms_v1.KeyManagementServiceClient, **query: str) -> list[str]:
    return _ids(kms.list_crypto_keys(request={"parent": RING, **query}))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("labels.team=alpha", ["k0", "k2"]),
        ("labels.team != alpha", ["k1", "mac"]),  # a key without the label is not alpha
        ("NOT labels.team=alpha", ["k1", "mac"]),
        ("-labels.team=alpha", ["k1", "mac"]),
        ("labels:team", ["k0", "k1", "k2"]),  # has the key
        ("purpose=MAC", ["mac"]),
        ("primary.algorithm=GOOGLE_SYMMETRIC_ENCRYPTION", ["k0", "k1", "k2"]),  # the MAC key has no primary
        ('name:"CRYPTOKEYS/K1"', ["k1"]),  # containment ignores case
        ("labels.team=beta OR purpose=MAC", ["k1", "mac"]),
        ("labels.team=alpha OR purpose=MAC name:k2", ["k2"]),  # OR binds tighter than AND (here a space)
        ("labels.team=alpha OR purpose=MAC AND name:k2", ["k2"]),
        ("labels.team=alpha OR (purpose=MAC AND name:k2)", ["k0", "k2"]),
        ("create_time>2000-01-01T00:00:00Z", ["k0", "k1", "k2", "mac"]),
        ('createTime < "2000-01-01T00:00:00Z"', []),  # the JSON name too
        ("destroy_scheduled_duration=2592000s AND purpose=ENCRYPT_DECRYPT", ["k0", "k1", "k2"]),
    ],
)
def test_a_filter_keeps_the_keys_it_matches(
    kms: kms_v1.KeyManagementServiceClient, query: str, expected: list[str]
) -> None:
    assert _keys(kms, filter=query) == expected


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("name desc", ["mac", "k2", "k1", "k0"]),
        ("labels.team, name desc", ["mac", "k2", "k0", "k1"]),  # no label sorts first; ties by the next key
        ("labels.team desc,name", ["k1", "k0", "k2", "mac"]),
        ("purpose desc, create_time asc", ["mac", "k0", "k1", "k2"]),
    ],
)
def test_order_by_sorts_on_fields_in_turn(
    kms: kms_v1.KeyManagementServiceClient, order: str, expected: list[str]
) -> None:
    assert _keys(kms, order_by=order) == expected


def test_pages_and_total_size_count_what_matches(kms: kms_v1.KeyManagementServiceClient) -> None:
    first = kms.list_crypto_keys(request={"parent": RING, "filter": "labels.team=alpha", "order_by": "name desc",
                                          "page_size": 1}).raw_page  # fmt: skip
    assert (_ids(first.crypto_keys), first.total_size) == (["k2"], 2) and first.next_page_token
    second = kms.list_crypto_keys(request={"parent": RING, "filter": "labels.team=alpha", "order_by": "name desc",
                                           "page_size": 1, "page_token": first.next_page_token}).raw_page  # fmt: skip
    assert (_ids(second.crypto_keys), second.next_page_token) == (["k0"], "")


def test_versions_and_key_rings_are_filtered_and_sorted(kms: kms_v1.KeyManagementServiceClient) -> None:
    versions = {"parent": f"{RING}/cryptoKeys/k0"}
    assert _ids(kms.list_crypto_key_versions(request={**versions, "filter": "state=ENABLED"})) == ["1", "3"]
    assert _ids(kms.list_crypto_key_versions(request={**versions, "filter": "destroy_time>2000-01-01T00:00:00Z"})) == [
        "2"
    ]
    assert _ids(kms.list_crypto_key_versions(request={**versions, "order_by": "name desc"})) == ["3", "2", "1"]
    rings = kms.list_key_rings(request={"parent": LOCATION, "filter": "name:OTH"}).raw_page
    assert (_ids(rings.key_rings), rings.total_size) == (["other"], 1)
    assert _ids(kms.list_key_rings(request={"parent": LOCATION, "order_by": "name desc"})) == ["r", "other"]


@pytest.mark.parametrize(
    ("field", "query", "message"),
    [
        ("filter", "state=ENABLED", "CryptoKey has no field 'state'"),
        ("filter", "primary=x", "'primary' is a message"),
        ("filter", "labels.team", "an operator"),
        ("filter", "labels.team=alpha AND", "a comparison is missing"),
        ("filter", 'name="open', "a closing '\"' is missing"),
        ("filter", "(name:k", "a ')' is missing"),
        ("filter", "create_time>yesterday", "'yesterday' is not a value of field create_time"),
        ("filter", "destroy_scheduled_duration=30d", "is not a value of field destroy_scheduled_duration"),
        ("filter", "(" * (MAX_DEPTH + 1) + "name:k" + ")" * (MAX_DEPTH + 1), f"more than {MAX_DEPTH} levels"),
        ("filter", "name:" + "k" * MAX_QUERY_CHARS, f"at most {MAX_QUERY_CHARS} characters"),
        ("order_by", "name sideways", "'name sideways' is not"),
        ("order_by", "bogus", "CryptoKey has no field 'bogus'"),
        ("order_by", "labels", "sort on a key of labels"),
    ],
)
def test_a_bad_filter_or_order_is_refused_in_words(
    kms: kms_v1.KeyManagementServiceClient, field: str, query: str, message: str
) -> None:
    with pytest.raises(exceptions.BadRequest) as refused:
        _keys(kms, **{field: query})
    assert message in refused.value.message
