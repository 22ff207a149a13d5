"""ASYMMETRIC_SIGN, ASYMMETRIC_DECRYPT and MAC crypto keys: AsymmetricSign, GetPublicKey, AsymmetricDecrypt, MacSign,
MacVerify with the official client.

Signatures are checked with ``cryptography`` against the PEM GetPublicKey gives, as a verifier holding only the
public key would; Cloud KMS's rules: such keys have no primary version, serve no Encrypt/Decrypt, take no
rotation schedule, and their versions keep the key's algorithm.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

import google_crc32c
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from gcp_harness import LOCATION, client
from google.api_core import exceptions
from google.cloud import kms_v1

from kubekms.backend import KeyState
from kubekms.devenv.gcpserver import GcpServer
from kubekms.providers import BackendConfig, open_backend
from kubekms.server import gcp_operations as ops
from kubekms.server.gcp_store import CryptoKeyRecord, GcpStore

Client = kms_v1.KeyManagementServiceClient
Purpose = kms_v1.CryptoKey.CryptoKeyPurpose
Algorithm = kms_v1.CryptoKeyVersion.CryptoKeyVersionAlgorithm
State = kms_v1.CryptoKeyVersion.CryptoKeyVersionState
RING = f"{LOCATION}/keyRings/shared"
MESSAGE = b"pay 100 to alice"


def _key(admin: Client, key_id: str, purpose: int, algorithm: int) -> kms_v1.CryptoKey:
    return admin.create_crypto_key(request={"parent": RING, "crypto_key_id": key_id, "crypto_key": {
        "purpose": purpose, "version_template": {"algorithm": algorithm}}})  # fmt: skip


def _public_key(admin: Client, version: str) -> object:
    answer = admin.get_public_key(request={"name": version})
    assert answer.pem_crc32c == google_crc32c.value(answer.pem.encode()) and answer.name == version
    return serialization.load_pem_public_key(answer.pem.encode())


SIGNING = [Algorithm.EC_SIGN_P256_SHA256, Algorithm.EC_SIGN_P384_SHA384, Algorithm.RSA_SIGN_PSS_2048_SHA256,
           Algorithm.RSA_SIGN_PKCS1_2048_SHA256]  # fmt: skip


@pytest.mark.parametrize("algorithm", SIGNING)
def test_signatures_verify_under_the_public_key(admin: Client, shared_ring: kms_v1.KeyRing, algorithm: int) -> None:
    key = _key(admin, f"sign-{algorithm}", Purpose.ASYMMETRIC_SIGN, algorithm)
    assert key.purpose == Purpose.ASYMMETRIC_SIGN and not key.primary.name  # no primary version
    assert key.version_template.algorithm == algorithm
    version = f"{key.name}/cryptoKeyVersions/1"
    assert admin.get_crypto_key_version(request={"name": version}).algorithm == algorithm
    public_key = _public_key(admin, version)
    chosen = hashes.SHA384() if algorithm == Algorithm.EC_SIGN_P384_SHA384 else hashes.SHA256()
    digest = {chosen.name: hashlib.new(chosen.name, MESSAGE).digest()}
    signed = admin.asymmetric_sign(request={"name": version, "digest": digest,
                                            "digest_crc32c": google_crc32c.value(digest[chosen.name])})  # fmt: skip
    assert signed.verified_digest_crc32c and signed.signature_crc32c == google_crc32c.value(signed.signature)
    from_data = admin.asymmetric_sign(request={"name": version, "data": MESSAGE})
    for signature in (signed.signature, from_data.signature):
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, MESSAGE, ec.ECDSA(chosen))
        else:
            assert isinstance(public_key, rsa.RSAPublicKey)
            scheme = (padding.PSS(padding.MGF1(chosen), chosen.digest_size)
                      if algorithm == Algorithm.RSA_SIGN_PSS_2048_SHA256 else padding.PKCS1v15())  # fmt: skip
            public_key.verify(signature, MESSAGE, scheme, chosen)


def test_signing_keys_rules(admin: Client, shared_ring: kms_v1.KeyRing) -> None:
    key = _key(admin, "sign-rules", Purpose.ASYMMETRIC_SIGN, Algorithm.EC_SIGN_P256_SHA256)
    version = f"{key.name}/cryptoKeyVersions/1"
    sha256 = hashlib.sha256(MESSAGE).digest()
    for request, words in (
        ({"name": version, "digest": {"sha384": hashlib.sha384(MESSAGE).digest()}}, "digest.sha256"),
        ({"name": version, "digest": {"sha256": sha256}, "data": MESSAGE}, "exactly one"),
        ({"name": version}, "exactly one"),
        ({"name": version, "digest": {"sha256": sha256}, "digest_crc32c": 1}, "digest_crc32c"),
    ):
        with pytest.raises(exceptions.InvalidArgument, match=words):
            admin.asymmetric_sign(request=request)
    primary = {"name": key.name, "crypto_key_version_id": "1"}
    for refused in (lambda: admin.encrypt(request={"name": key.name, "plaintext": b"x"}),
                    lambda: admin.mac_sign(request={"name": version, "data": b"x"}),
                    lambda: admin.update_crypto_key_primary_version(request=primary)):  # fmt: skip
        with pytest.raises(exceptions.FailedPrecondition, match="purpose ASYMMETRIC_SIGN"):
            refused()
    second = admin.create_crypto_key_version(request={"parent": key.name, "crypto_key_version": {}})
    assert second.algorithm == Algorithm.EC_SIGN_P256_SHA256 and not admin.get_crypto_key(
        request={"name": key.name}).primary.name  # fmt: skip
    assert _public_key(admin, second.name) != _public_key(admin, version)
    with pytest.raises(exceptions.InvalidArgument, match="does not suit"):
        other = {"algorithm": Algorithm.HMAC_SHA256}
        admin.create_crypto_key_version(request={"parent": key.name, "crypto_key_version": other})
    admin.update_crypto_key_version(request={"crypto_key_version": {"name": version, "state": State.DISABLED},
                                             "update_mask": {"paths": ["state"]}})  # fmt: skip
    with pytest.raises(exceptions.FailedPrecondition, match="DISABLED"):
        admin.asymmetric_sign(request={"name": version, "digest": {"sha256": sha256}})


@pytest.mark.parametrize("algorithm", [Algorithm.RSA_DECRYPT_OAEP_2048_SHA256, Algorithm.RSA_DECRYPT_OAEP_3072_SHA1])
def test_asymmetric_decrypt_of_what_the_public_key_encrypted(
    admin: Client, shared_ring: kms_v1.KeyRing, algorithm: int
) -> None:
    """As a Cloud KMS user does: encrypt locally with GetPublicKey's key (OAEP, MGF1 over the same hash)."""
    key = _key(admin, f"decrypt-{algorithm}", Purpose.ASYMMETRIC_DECRYPT, algorithm)
    assert key.purpose == Purpose.ASYMMETRIC_DECRYPT and not key.primary.name
    version = f"{key.name}/cryptoKeyVersions/1"
    public_key = _public_key(admin, version)
    assert isinstance(public_key, rsa.RSAPublicKey)
    chosen = hashes.SHA1() if algorithm == Algorithm.RSA_DECRYPT_OAEP_3072_SHA1 else hashes.SHA256()
    sealed = public_key.encrypt(MESSAGE, padding.OAEP(padding.MGF1(chosen), chosen, None))
    opened = admin.asymmetric_decrypt(request={"name": version, "ciphertext": sealed,
                                               "ciphertext_crc32c": google_crc32c.value(sealed)})  # fmt: skip
    assert opened.plaintext == MESSAGE and opened.verified_ciphertext_crc32c
    assert opened.plaintext_crc32c == google_crc32c.value(MESSAGE)
    with pytest.raises(exceptions.InvalidArgument, match="Decryption failed"):
        admin.asymmetric_decrypt(request={"name": version, "ciphertext": sealed[:-1] + bytes([sealed[-1] ^ 1])})
    with pytest.raises(exceptions.FailedPrecondition, match="purpose ASYMMETRIC_DECRYPT"):
        admin.asymmetric_sign(request={"name": version, "data": MESSAGE})


def test_mac_sign_and_verify(gcp: GcpServer, admin: Client, shared_ring: kms_v1.KeyRing) -> None:
    key = _key(admin, "mac", Purpose.MAC, Algorithm.HMAC_SHA256)
    assert key.purpose == Purpose.MAC and not key.primary.name
    version = f"{key.name}/cryptoKeyVersions/1"
    signed = admin.mac_sign(request={"name": version, "data": MESSAGE, "data_crc32c": google_crc32c.value(MESSAGE)})
    assert len(signed.mac) == 32 and signed.verified_data_crc32c
    assert signed.mac_crc32c == google_crc32c.value(signed.mac)
    checked = admin.mac_verify(request={"name": version, "data": MESSAGE, "mac": signed.mac,
                                        "mac_crc32c": google_crc32c.value(signed.mac)})  # fmt: skip
    assert checked.success and checked.verified_success_integrity and checked.verified_mac_crc32c
    tampered = admin.mac_verify(request={"name": version, "data": MESSAGE + b"0", "mac": signed.mac})
    assert not tampered.success and not tampered.verified_success_integrity
    with pytest.raises(exceptions.InvalidArgument, match="mac_crc32c"):
        admin.mac_verify(request={"name": version, "data": MESSAGE, "mac": signed.mac, "mac_crc32c": 7})
    with pytest.raises(exceptions.FailedPrecondition, match="purpose MAC"):
        admin.get_public_key(request={"name": version})
    with pytest.raises(exceptions.FailedPrecondition, match="purpose MAC"):
        admin.asymmetric_decrypt(request={"name": version, "ciphertext": b"x" * 256})
    with pytest.raises(exceptions.PermissionDenied):  # reader: describe-key and list-keys only
        client(gcp, "reader").mac_sign(request={"name": version, "data": MESSAGE})


def test_a_database_of_the_first_schema_gets_the_algorithm_column(tmp_path: Path) -> None:
    """gcp.db files written before ASYMMETRIC_SIGN and MAC keys: their crypto keys are symmetric."""
    db = sqlite3.connect(tmp_path / "gcp.db")
    db.execute(
        "CREATE TABLE crypto_keys (location TEXT NOT NULL, ring TEXT NOT NULL, key TEXT NOT NULL,"
        " created_at REAL NOT NULL, labels TEXT NOT NULL, rotation_period INTEGER, next_rotation REAL,"
        " destroy_days INTEGER NOT NULL, primary_version INTEGER, PRIMARY KEY (location, ring, key))"
    )
    db.execute("INSERT INTO crypto_keys VALUES ('global', 'r', 'k', 1.0, '{}', NULL, NULL, 30, 1)")
    db.commit()
    db.close()
    store = GcpStore(tmp_path)
    try:
        assert store.crypto_key("global", "r", "k").algorithm == "GOOGLE_SYMMETRIC_ENCRYPTION"
    finally:
        store.close()
    GcpStore(tmp_path).close()  # a second open finds the column there


async def test_provider_gcp_lists_only_encrypt_decrypt_keys(gcp: GcpServer, admin: Client) -> None:
    """A signing or MAC key in the provider's key ring is no key of the provider (it would show as a destroyed
    AES key: it has no primary version)."""
    backend = await open_backend(gcp.backend_config("admin", key_ring="mixed"))
    try:
        await backend.create_key("data")
        ring = f"{LOCATION}/keyRings/mixed"
        for key_id, purpose, algorithm in (("signer", Purpose.ASYMMETRIC_SIGN, Algorithm.EC_SIGN_P256_SHA256),
                                           ("macer", Purpose.MAC, Algorithm.HMAC_SHA256)):  # fmt: skip
            admin.create_crypto_key(request={"parent": ring, "crypto_key_id": key_id, "crypto_key": {
                "purpose": purpose, "version_template": {"algorithm": algorithm}}})  # fmt: skip
        assert [key.key_id for key in (await backend.list_keys()).keys] == ["data"]
        assert (await backend.list_keys(state=KeyState.DESTROYED)).keys == []
    finally:
        await backend.close()


def test_get_public_key_in_the_format_asked_for(admin: Client, shared_ring: kms_v1.KeyRing) -> None:
    """Cloud KMS: no public_key_format gives ``pem``; PEM or DER asked for comes in ``public_key`` (with its CRC32C)
    and the answer names the format; a post-quantum format for a classical key is refused."""
    key = _key(admin, "public-formats", Purpose.ASYMMETRIC_SIGN, Algorithm.EC_SIGN_P256_SHA256)
    version = f"{key.name}/cryptoKeyVersions/1"
    default = admin.get_public_key(request={"name": version})
    assert default.pem and not default.public_key.data
    assert default.public_key_format == kms_v1.PublicKey.PublicKeyFormat.PUBLIC_KEY_FORMAT_UNSPECIFIED
    expected = serialization.load_pem_public_key(default.pem.encode())
    for wanted, load in ((kms_v1.PublicKey.PublicKeyFormat.PEM, serialization.load_pem_public_key),
                         (kms_v1.PublicKey.PublicKeyFormat.DER, serialization.load_der_public_key)):  # fmt: skip
        answer = admin.get_public_key(request={"name": version, "public_key_format": wanted})
        data = answer.public_key.data
        assert answer.public_key_format == wanted and not answer.pem and answer.name == version
        assert answer.public_key.crc32c_checksum == google_crc32c.value(data)
        assert load(data) == expected
    with pytest.raises(exceptions.InvalidArgument, match="post-quantum"):
        admin.get_public_key(request={"name": version, "public_key_format": kms_v1.PublicKey.PublicKeyFormat.NIST_PQC})


@pytest.mark.parametrize(("key_id", "purpose", "algorithm"), [("sched-mac", Purpose.MAC, Algorithm.HMAC_SHA256),
                         ("sched-ec", Purpose.ASYMMETRIC_SIGN, Algorithm.EC_SIGN_P256_SHA256)])  # fmt: skip
def test_a_rotation_time_is_refused_on_keys_without_a_primary(
    admin: Client, shared_ring: kms_v1.KeyRing, key_id: str, purpose: int, algorithm: int
) -> None:
    """next_rotation_time alone (no rotation_period) was taken, and automatic rotation then made a MAC or asymmetric
    key's new version its primary."""
    soon = {"seconds": int(time.time()) + 3600}
    template = {"purpose": purpose, "version_template": {"algorithm": algorithm}}
    with pytest.raises(exceptions.InvalidArgument, match="next_rotation_time applies to ENCRYPT_DECRYPT"):
        admin.create_crypto_key(request={"parent": RING, "crypto_key_id": key_id,
                                         "crypto_key": {**template, "next_rotation_time": soon}})  # fmt: skip
    key = admin.create_crypto_key(request={"parent": RING, "crypto_key_id": key_id, "crypto_key": template})
    with pytest.raises(exceptions.InvalidArgument, match="next_rotation_time applies to ENCRYPT_DECRYPT"):
        admin.update_crypto_key(request={"crypto_key": {"name": key.name, "next_rotation_time": soon},
                                         "update_mask": {"paths": ["next_rotation_time"]}})  # fmt: skip
    assert "next_rotation_time" not in admin.get_crypto_key(request={"name": key.name})


def test_automatic_rotation_gives_a_mac_key_no_primary(tmp_path: Path) -> None:
    """A schedule stored before it was refused: the rotation adds a version, the key still has no primary."""

    async def scenario() -> None:
        backend = await open_backend(BackendConfig(provider="local", state_dir=tmp_path / "keystore", init=True))
        store = GcpStore(tmp_path)
        try:
            now = datetime.now(UTC)
            store.create_key_ring("global", "r", now.timestamp())
            store.create_crypto_key(CryptoKeyRecord("global", "r", "mac", now.timestamp(), 30,
                                                    next_rotation=now.timestamp() - 1, algorithm="HMAC_SHA256"),
                                    None)  # fmt: skip
            call = ops.GcpCall(backend=backend, store=store, lock=asyncio.Lock(), now=now)
            rotated, refused = await ops.rotate_due_keys(call, "proj")
            assert (len(rotated), refused) == (1, {})
            assert store.crypto_key("global", "r", "mac").primary_version is None
            assert [v.version for v in store.versions("global", "r", "mac", 0, -1)[0]] == [1]
        finally:
            store.close()
            await backend.close()

    asyncio.run(scenario())
