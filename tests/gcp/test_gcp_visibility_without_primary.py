"""A crypto key without a primary version (MAC, ASYMMETRIC_*) is visible through its versions: to a caller who may
describe at least one of them. Every version denying the caller hides it (tests/redteam/test_s8_gcp_visibility.py);
these check the other side of that rule and the write that answers the key."""

from __future__ import annotations

from collections.abc import Iterator

import google.api_core.exceptions
import pytest
from gcp_harness import client, put_version_policy
from google.cloud import kms_v1
from google.protobuf import field_mask_pb2

from kubekms.devenv.gcpserver import GcpServer, gcp_server
from kubekms.devenv.kmsserver import Principal

PROJECT = "proj-no-primary"
LOCATION = f"projects/{PROJECT}/locations/global"
RING = f"{LOCATION}/keyRings/r"
PRINCIPALS = (Principal("lister", actions=("list-keys", "describe-key"), projects=(PROJECT,)),
              Principal("editor", projects=(PROJECT,)), Principal("owner", projects=(PROJECT,)))  # fmt: skip
MAC = kms_v1.CryptoKey.CryptoKeyPurpose.MAC
HMAC = kms_v1.CryptoKeyVersion.CryptoKeyVersionAlgorithm.HMAC_SHA256


def _deny(gcp: GcpServer, key: str, version: int, *denied: str) -> None:
    """As owner, through the AWS wire: the version's keystore key denies ``denied`` everything."""
    deny = {"Effect": "Deny", "Principal": {"AWS": [f"arn:aws:iam::{PROJECT}:user/{name}" for name in denied]},
            "Action": "kms:*", "Resource": "*"}  # fmt: skip
    put_version_policy(gcp, PROJECT, f"gcp/global/r/{key}/{version}", [deny])


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with gcp_server(tmp_path_factory.mktemp("no-primary"), principals=PRINCIPALS, project_id=PROJECT) as running:
        admin = client(running, "admin")
        admin.create_key_ring(request={"parent": LOCATION, "key_ring_id": "r"})
        for key in ("half", "all", "empty"):
            template = {"purpose": MAC, "labels": {"team": "a"}, "version_template": {"algorithm": HMAC}}
            admin.create_crypto_key(request={"parent": RING, "crypto_key_id": key, "crypto_key": template,
                                             "skip_initial_version_creation": key == "empty"})  # fmt: skip
        for key in ("half", "all"):
            admin.create_crypto_key_version(request={"parent": f"{RING}/cryptoKeys/{key}", "crypto_key_version": {}})
        _deny(running, "half", 1, "lister")  # version 2 still describable
        for version in (1, 2):
            _deny(running, "all", version, "lister", "editor")
        yield running


def test_a_key_whose_caller_may_describe_one_of_its_versions_is_listed_counted_and_read(gcp: GcpServer) -> None:
    lister = client(gcp, "lister")
    page = lister.list_crypto_keys(request={"parent": RING}).pages.__next__()
    assert sorted(key.name.rsplit("/", 1)[1] for key in page.crypto_keys) == ["empty", "half"]
    assert page.total_size == 2
    assert lister.get_crypto_key(name=f"{RING}/cryptoKeys/half").labels["team"] == "a"


def test_a_key_with_no_version_has_no_policy_to_hide_it(gcp: GcpServer) -> None:
    assert client(gcp, "lister").get_crypto_key(name=f"{RING}/cryptoKeys/empty").purpose == MAC


def test_a_label_update_of_a_key_whose_versions_all_deny_the_caller_is_refused_and_not_made(gcp: GcpServer) -> None:
    update = {"crypto_key": {"name": f"{RING}/cryptoKeys/all", "labels": {"team": "b"}},
              "update_mask": field_mask_pb2.FieldMask(paths=["labels"])}  # fmt: skip
    with pytest.raises(google.api_core.exceptions.PermissionDenied):
        client(gcp, "editor").update_crypto_key(request=update)
    assert client(gcp, "owner").get_crypto_key(name=f"{RING}/cryptoKeys/all").labels["team"] == "a"
