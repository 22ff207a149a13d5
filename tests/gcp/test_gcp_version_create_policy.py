"""CreateCryptoKeyVersion is granted on the crypto key (Cloud KMS's cryptoKeyVersions.create): here by the key's
policy, its primary's or, for a key without one, one of its versions'. A caller every version denies adds none."""

from __future__ import annotations

from collections.abc import Iterator

import google.api_core.exceptions
import pytest
from gcp_harness import client, put_version_policy
from google.cloud import kms_v1

from kubekms.devenv.gcpserver import GcpServer, gcp_server
from kubekms.devenv.kmsserver import Principal

PROJECT = "proj-new-version"
LOCATION = f"projects/{PROJECT}/locations/global"
RING = f"{LOCATION}/keyRings/r"
PRINCIPALS = (Principal("editor", projects=(PROJECT,)), Principal("owner", projects=(PROJECT,)))
MAC = kms_v1.CryptoKey.CryptoKeyPurpose.MAC
HMAC = kms_v1.CryptoKeyVersion.CryptoKeyVersionAlgorithm.HMAC_SHA256
SYMMETRIC = kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT


def _deny(gcp: GcpServer, key: str, version: int, action: str = "kms:*") -> None:
    """As owner, through the AWS wire: the version's keystore key denies editor ``action``."""
    deny = {"Effect": "Deny", "Principal": {"AWS": f"arn:aws:iam::{PROJECT}:user/editor"}, "Action": action,
            "Resource": "*"}  # fmt: skip
    put_version_policy(gcp, PROJECT, f"gcp/global/r/{key}/{version}", [deny])


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with gcp_server(tmp_path_factory.mktemp("new-version"), principals=PRINCIPALS, project_id=PROJECT) as running:
        admin = client(running, "admin")
        admin.create_key_ring(request={"parent": LOCATION, "key_ring_id": "r"})
        for key, purpose in (("mac-all", MAC), ("mac-half", MAC), ("sym", SYMMETRIC), ("sym-rotate", SYMMETRIC)):
            template = {"purpose": purpose}
            if purpose == MAC:
                template["version_template"] = {"algorithm": HMAC}
            admin.create_crypto_key(request={"parent": RING, "crypto_key_id": key, "crypto_key": template})
        for key in ("mac-all", "mac-half"):
            admin.create_crypto_key_version(request={"parent": f"{RING}/cryptoKeys/{key}", "crypto_key_version": {}})
        for version in (1, 2):
            _deny(running, "mac-all", version)
        _deny(running, "mac-half", 1)
        _deny(running, "sym", 1)
        _deny(running, "sym-rotate", 1, "kms:RotateKeyOnDemand")  # may see the key, not add to it
        yield running


def _versions(gcp: GcpServer, key: str) -> int:
    return len(list(client(gcp, "owner").list_crypto_key_versions(request={"parent": f"{RING}/cryptoKeys/{key}"})))


@pytest.mark.parametrize("key", ["mac-all", "sym", "sym-rotate"])
def test_a_caller_the_key_policy_denies_adds_no_version(gcp: GcpServer, key: str) -> None:
    before = _versions(gcp, key)
    with pytest.raises(google.api_core.exceptions.PermissionDenied):
        client(gcp, "editor").create_crypto_key_version(
            request={"parent": f"{RING}/cryptoKeys/{key}", "crypto_key_version": {}}
        )
    assert _versions(gcp, key) == before


def test_a_key_without_a_primary_takes_a_version_from_a_caller_one_of_its_versions_allows(gcp: GcpServer) -> None:
    made = client(gcp, "editor").create_crypto_key_version(
        request={"parent": f"{RING}/cryptoKeys/mac-half", "crypto_key_version": {}}
    )
    assert made.name.endswith("/cryptoKeyVersions/3") and _versions(gcp, "mac-half") == 3
