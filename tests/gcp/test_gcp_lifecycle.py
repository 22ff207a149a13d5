"""The official google-cloud-kms client through a whole key lifecycle on the kubekms server's Cloud KMS API."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import google_crc32c
import pytest
from gcp_harness import LOCATION, PROJECT, client
from google.api_core import exceptions
from google.cloud import kms_v1

from kubekms.devenv.gcpserver import GcpServer, gcp_server
from kubekms.errors import NotFound

State = kms_v1.CryptoKeyVersion.CryptoKeyVersionState
ENCRYPT_DECRYPT = kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT
Client = kms_v1.KeyManagementServiceClient


def crc(data: bytes) -> int:
    return int(google_crc32c.value(data))


def new_key(client: Client, ring: kms_v1.KeyRing, key_id: str, **fields: object) -> kms_v1.CryptoKey:
    return client.create_crypto_key(
        request={"parent": ring.name, "crypto_key_id": key_id, "crypto_key": {"purpose": ENCRYPT_DECRYPT, **fields}}
    )


def encrypt(client: Client, name: str, plaintext: bytes, aad: bytes = b"") -> kms_v1.EncryptResponse:
    return client.encrypt(request={"name": name, "plaintext": plaintext, "additional_authenticated_data": aad,
                                   "plaintext_crc32c": crc(plaintext),
                                   "additional_authenticated_data_crc32c": crc(aad)})  # fmt: skip


def decrypt(client: Client, name: str, ciphertext: bytes, aad: bytes = b"") -> kms_v1.DecryptResponse:
    return client.decrypt(request={"name": name, "ciphertext": ciphertext, "additional_authenticated_data": aad,
                                   "ciphertext_crc32c": crc(ciphertext)})  # fmt: skip


def set_state(client: Client, version: str, state: State) -> kms_v1.CryptoKeyVersion:
    return client.update_crypto_key_version(
        request={"crypto_key_version": {"name": version, "state": state}, "update_mask": {"paths": ["state"]}}
    )


def test_key_rings_create_get_list_in_pages(admin: Client) -> None:
    names = [admin.create_key_ring(request={"parent": LOCATION, "key_ring_id": f"paged-{i}"}).name for i in range(3)]
    assert admin.get_key_ring(request={"name": names[0]}).name == names[0]
    with pytest.raises(exceptions.AlreadyExists):
        admin.create_key_ring(request={"parent": LOCATION, "key_ring_id": "paged-0"})
    pages = list(admin.list_key_rings(request={"parent": LOCATION, "page_size": 2}).pages)
    listed = [ring.name for page in pages for ring in page.key_rings]
    assert set(names) <= set(listed) and len(listed) == len(set(listed)) == pages[0].total_size
    assert len(pages) == -(-pages[0].total_size // 2) and pages[0].next_page_token
    with pytest.raises(exceptions.NotFound):
        admin.get_key_ring(request={"name": f"{LOCATION}/keyRings/absent"})


def test_encrypt_decrypt_with_aad_and_crc32c(admin: Client, shared_ring: kms_v1.KeyRing) -> None:
    key = new_key(admin, shared_ring, "aad", labels={"team": "payments"})
    assert key.primary.state == State.ENABLED and key.primary.name == f"{key.name}/cryptoKeyVersions/1"
    assert key.labels["team"] == "payments" and key.destroy_scheduled_duration == timedelta(days=30)
    answer = encrypt(admin, key.name, b"secret payload", b"order-17")
    assert answer.verified_plaintext_crc32c and answer.verified_additional_authenticated_data_crc32c
    assert answer.ciphertext_crc32c == crc(answer.ciphertext) and answer.name == key.primary.name
    assert b"secret payload" not in answer.ciphertext
    opened = decrypt(admin, key.name, answer.ciphertext, b"order-17")
    assert opened.plaintext == b"secret payload" and opened.plaintext_crc32c == crc(b"secret payload")
    assert opened.used_primary
    with pytest.raises(exceptions.InvalidArgument, match="Decryption failed"):
        decrypt(admin, key.name, answer.ciphertext, b"order-18")
    with pytest.raises(exceptions.InvalidArgument, match="plaintext_crc32c did not match"):
        admin.encrypt(request={"name": key.name, "plaintext": b"x", "plaintext_crc32c": crc(b"y")})
    with pytest.raises(exceptions.InvalidArgument, match="ciphertext_crc32c did not match"):
        admin.decrypt(request={"name": key.name, "ciphertext": answer.ciphertext, "ciphertext_crc32c": 1})
    tampered = bytearray(answer.ciphertext)
    tampered[-1] ^= 1
    with pytest.raises(exceptions.InvalidArgument, match="Decryption failed"):
        decrypt(admin, key.name, bytes(tampered), b"order-17")


def test_rotation_keeps_old_versions_decrypting(admin: Client, shared_ring: kms_v1.KeyRing) -> None:
    key = new_key(admin, shared_ring, "rotated")
    old = encrypt(admin, key.name, b"before rotation")
    version = admin.create_crypto_key_version(request={"parent": key.name, "crypto_key_version": {}})
    assert version.name.endswith("/cryptoKeyVersions/2") and version.state == State.ENABLED
    # Cloud KMS: a new version is not primary until it is made primary
    assert encrypt(admin, key.name, b"x").name.endswith("/1")
    updated = admin.update_crypto_key_primary_version(request={"name": key.name, "crypto_key_version_id": "2"})
    assert updated.primary.name == version.name
    new = encrypt(admin, key.name, b"after rotation")
    assert new.name == version.name
    assert decrypt(admin, key.name, old.ciphertext).plaintext == b"before rotation"
    assert not decrypt(admin, key.name, old.ciphertext).used_primary
    assert decrypt(admin, key.name, new.ciphertext).used_primary
    # Encrypt may name a version explicitly
    assert encrypt(admin, f"{key.name}/cryptoKeyVersions/1", b"y").name.endswith("/1")


def test_disabled_version_refuses_until_enabled(admin: Client, shared_ring: kms_v1.KeyRing) -> None:
    key = new_key(admin, shared_ring, "disabled")
    sealed = encrypt(admin, key.name, b"data").ciphertext
    assert set_state(admin, key.primary.name, State.DISABLED).state == State.DISABLED
    with pytest.raises(exceptions.FailedPrecondition, match="is not enabled, current state is: DISABLED"):
        decrypt(admin, key.name, sealed)
    with pytest.raises(exceptions.FailedPrecondition, match="is not enabled"):
        encrypt(admin, key.name, b"data")
    with pytest.raises(exceptions.FailedPrecondition):
        admin.update_crypto_key_primary_version(request={"name": key.name, "crypto_key_version_id": "1"})
    assert set_state(admin, key.primary.name, State.ENABLED).state == State.ENABLED
    assert decrypt(admin, key.name, sealed).plaintext == b"data"


def test_destroy_window_of_one_day_is_google_s_minimum(admin: Client, shared_ring: kms_v1.KeyRing) -> None:
    """Google takes 24 hours; the keystore's own minimum (7 days, the AWS and v1.0 wires') does not apply here."""
    key = new_key(admin, shared_ring, "one-day", destroy_scheduled_duration=timedelta(days=1))
    assert key.destroy_scheduled_duration == timedelta(days=1)
    before = datetime.now(UTC)
    scheduled = admin.destroy_crypto_key_version(request={"name": key.primary.name})
    assert scheduled.state == State.DESTROY_SCHEDULED
    assert timedelta(days=1) - timedelta(minutes=1) < scheduled.destroy_time - before < timedelta(days=1, minutes=1)
    assert admin.restore_crypto_key_version(request={"name": key.primary.name}).state == State.DISABLED


def test_destroy_is_scheduled_and_restore_brings_the_version_back_disabled(
    admin: Client, shared_ring: kms_v1.KeyRing
) -> None:
    key = new_key(admin, shared_ring, "destroyed", destroy_scheduled_duration=timedelta(days=9))
    sealed = encrypt(admin, key.name, b"keep me").ciphertext
    before = datetime.now(UTC)
    scheduled = admin.destroy_crypto_key_version(request={"name": key.primary.name})
    assert scheduled.state == State.DESTROY_SCHEDULED
    assert timedelta(days=9) - timedelta(minutes=1) < scheduled.destroy_time - before < timedelta(days=9, minutes=1)
    with pytest.raises(exceptions.FailedPrecondition, match="DESTROY_SCHEDULED"):
        decrypt(admin, key.name, sealed)
    with pytest.raises(exceptions.FailedPrecondition):
        admin.destroy_crypto_key_version(request={"name": key.primary.name})
    with pytest.raises(exceptions.FailedPrecondition):
        set_state(admin, key.primary.name, State.ENABLED)
    restored = admin.restore_crypto_key_version(request={"name": key.primary.name})
    assert restored.state == State.DISABLED and "destroy_time" not in restored
    with pytest.raises(exceptions.FailedPrecondition):
        admin.restore_crypto_key_version(request={"name": key.primary.name})
    set_state(admin, key.primary.name, State.ENABLED)
    assert decrypt(admin, key.name, sealed).plaintext == b"keep me"


def test_versions_and_keys_list_in_pages(admin: Client) -> None:
    ring = admin.create_key_ring(request={"parent": LOCATION, "key_ring_id": "listing"})
    keys = [new_key(admin, ring, f"k{i}") for i in range(3)]
    for _ in range(2):
        admin.create_crypto_key_version(request={"parent": keys[0].name, "crypto_key_version": {}})
    pages = list(admin.list_crypto_key_versions(request={"parent": keys[0].name, "page_size": 2}).pages)
    assert [len(page.crypto_key_versions) for page in pages] == [2, 1] and pages[0].total_size == 3
    assert [v.name.rsplit("/", 1)[1] for page in pages for v in page.crypto_key_versions] == ["1", "2", "3"]
    listed = [key.name for key in admin.list_crypto_keys(request={"parent": ring.name, "page_size": 1})]
    assert listed == sorted(key.name for key in keys)
    assert admin.get_crypto_key(request={"name": keys[0].name}).primary.name.endswith("/1")
    got = admin.get_crypto_key_version(request={"name": f"{keys[0].name}/cryptoKeyVersions/3"})
    assert got.state == State.ENABLED and got.algorithm.name == "GOOGLE_SYMMETRIC_ENCRYPTION"


def test_update_labels_and_rotation_schedule(admin: Client, shared_ring: kms_v1.KeyRing) -> None:
    key = new_key(admin, shared_ring, "updated")
    due = datetime.now(UTC) + timedelta(days=3)
    updated = admin.update_crypto_key(request={
        "crypto_key": {"name": key.name, "labels": {"env": "prod"}, "rotation_period": timedelta(days=90),
                       "next_rotation_time": due},
        "update_mask": {"paths": ["labels", "rotation_period", "next_rotation_time"]},
    })  # fmt: skip
    assert dict(updated.labels) == {"env": "prod"} and updated.rotation_period == timedelta(days=90)
    assert abs(updated.next_rotation_time - due) < timedelta(seconds=1)
    again = admin.get_crypto_key(request={"name": key.name})
    assert dict(again.labels) == {"env": "prod"} and again.rotation_period == timedelta(days=90)


def test_automatic_rotation_makes_a_new_primary(gcp: GcpServer, admin: Client, shared_ring: kms_v1.KeyRing) -> None:
    key = new_key(admin, shared_ring, "auto", rotation_period=timedelta(days=1),
                  next_rotation_time=datetime.now(UTC) + timedelta(seconds=1))  # fmt: skip
    sealed = encrypt(admin, key.name, b"v1 data").ciphertext
    deadline = time.monotonic() + 20
    while admin.get_crypto_key(request={"name": key.name}).primary.name.endswith("/1"):
        assert time.monotonic() < deadline, "the maintenance pass did not rotate the key"
        time.sleep(0.1)
    rotated = admin.get_crypto_key(request={"name": key.name})
    assert rotated.primary.name.endswith("/2")
    assert rotated.next_rotation_time > datetime.now(UTC) + timedelta(hours=23)
    assert decrypt(admin, key.name, sealed).plaintext == b"v1 data"


def test_versions_are_keystore_keys_on_the_other_wires(gcp: GcpServer, admin: Client,
                                                       shared_ring: kms_v1.KeyRing) -> None:  # fmt: skip
    key = new_key(admin, shared_ring, "crosswire")
    sealed = encrypt(admin, key.name, b"one keystore", b"ctx").ciphertext
    alias = "gcp/global/shared/crosswire/1"
    described = gcp.server.call("describe_key", alias)
    assert described.state.name == "ENABLED"
    assert gcp.server.call("decrypt_data_key", alias, sealed, aad=b"ctx") == b"one keystore"
    gcp.server.call("disable_key", alias)
    assert admin.get_crypto_key_version(request={"name": key.primary.name}).state == State.DISABLED


def test_generate_random_bytes(admin: Client) -> None:
    answer = admin.generate_random_bytes(
        request={"location": LOCATION, "length_bytes": 64, "protection_level": kms_v1.ProtectionLevel.HSM}
    )
    assert len(answer.data) == 64 and answer.data_crc32c == crc(answer.data)
    assert answer.data != admin.generate_random_bytes(request={"location": LOCATION, "length_bytes": 64}).data
    with pytest.raises(exceptions.InvalidArgument, match="length_bytes"):
        admin.generate_random_bytes(request={"location": LOCATION, "length_bytes": 4})


def test_automatic_rotation_goes_on_after_a_restart(tmp_path: Path) -> None:
    with gcp_server(tmp_path, project_id=PROJECT, maintenance_interval=0.2) as restarted:
        admin = client(restarted)
        ring = admin.create_key_ring(request={"parent": LOCATION, "key_ring_id": "restart"})
        due = datetime.now(UTC) + timedelta(seconds=6)
        new_key(admin, ring, "due", rotation_period=timedelta(days=1), next_rotation_time=due)
        restarted.server.stop()
        # stopped before the rotation was due: only the restarted server can have made version 2
        assert datetime.now(UTC) < due, "the server took too long to stop: this run does not test a restart"
        restarted.server.start()
        # no Cloud KMS call after the restart: the version appears in the keystore (seen over the v1.0 wire)
        deadline = time.monotonic() + 20
        while True:
            try:
                assert restarted.server.call("describe_key", "gcp/global/restart/due/2").state.name == "ENABLED"
                break
            except NotFound:
                assert time.monotonic() < deadline, "no automatic rotation after the restart"
                time.sleep(0.1)
        assert admin.get_crypto_key(request={"name": f"{ring.name}/cryptoKeys/due"}).primary.name.endswith("/2")
