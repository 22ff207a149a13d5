"""The keystore's asymmetric and HMAC keys: sealed like symmetric material, refused for the other key types' work."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from kubekms.backend import KeyState
from kubekms.errors import InvalidArgument, InvalidState, Reason
from kubekms.keystore import Keystore


@pytest.fixture
def store(tmp_path: Path) -> Keystore:
    return Keystore(tmp_path / "ks", init=True)


def test_an_ecc_key_signs_what_its_public_key_verifies_and_survives_a_reopen(tmp_path: Path) -> None:
    store = Keystore(tmp_path / "ks", init=True)
    key_id = store.create_key("", key_spec="ECC_NIST_P384", key_usage="SIGN_VERIFY").key_id
    digest = hashlib.sha384(b"release 1.2").digest()
    signature = store.sign(key_id, digest, algorithm="ECDSA_SHA_384", digest=True).data
    store.close()
    reopened = Keystore(tmp_path / "ks")  # the private key was sealed, not kept in memory only
    public = serialization.load_der_public_key(reopened.get_public_key(key_id))
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(signature, b"release 1.2", ec.ECDSA(hashes.SHA384()))
    assert reopened.verify(key_id, b"release 1.2", signature, algorithm="ECDSA_SHA_384")
    assert not reopened.verify(key_id, b"release 1.3", signature, algorithm="ECDSA_SHA_384")
    sealed = (tmp_path / "ks" / "keystore.db").read_bytes()
    assert reopened.get_public_key(key_id) not in sealed  # stored sealed only


def test_rsa_oaep_round_trip_and_pss_signature(store: Keystore) -> None:
    encrypting = store.create_key("", key_spec="RSA_2048", key_usage="ENCRYPT_DECRYPT").key_id
    blob = store.encrypt_asymmetric(encrypting, b"secret", algorithm="RSAES_OAEP_SHA_256").data
    assert store.decrypt_asymmetric(encrypting, blob, algorithm="RSAES_OAEP_SHA_256").data == b"secret"
    signing = store.create_key("", key_spec="RSA_2048", key_usage="SIGN_VERIFY").key_id
    signature = store.sign(signing, b"m", algorithm="RSASSA_PSS_SHA_512").data
    public = serialization.load_der_public_key(store.get_public_key(signing))
    assert isinstance(public, rsa.RSAPublicKey)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA512()), salt_length=64)
    public.verify(signature, b"m", pss, hashes.SHA512())


def test_each_key_type_refuses_the_others_work(store: Keystore) -> None:
    symmetric = store.create_key("").key_id
    signing = store.create_key("", key_spec="ECC_NIST_P256", key_usage="SIGN_VERIFY").key_id
    mac = store.create_key("", key_spec="HMAC_256", key_usage="GENERATE_VERIFY_MAC").key_id
    refusals = {
        "symmetric signs": lambda: store.sign(symmetric, b"m", algorithm="ECDSA_SHA_256"),
        "ecc makes a data key": lambda: store.create_data_key(signing),
        "ecc with an RSA algorithm": lambda: store.sign(signing, b"m", algorithm="RSASSA_PSS_SHA_256"),
        "hmac encrypts": lambda: store.encrypt_data_key(mac, b"m"),
        "hmac with another hash": lambda: store.generate_mac(mac, b"m", algorithm="HMAC_SHA_512"),
        "ecc for encryption": lambda: store.create_key("", key_spec="ECC_NIST_P256", key_usage="ENCRYPT_DECRYPT"),
    }
    for what, call in refusals.items():
        with pytest.raises(InvalidArgument) as raised:
            call()
        assert raised.value.reason is Reason.KEY_USAGE_INVALID, what
    with pytest.raises(InvalidArgument) as raised:
        store.rotate_key(signing)
    assert raised.value.reason is Reason.UNSUPPORTED_OPERATION
    tag = store.generate_mac(mac, b"m", algorithm="HMAC_SHA_256").data
    assert len(tag) == 32
    assert store.verify_mac(mac, b"m", tag, algorithm="HMAC_SHA_256")
    assert not store.verify_mac(mac, b"n", tag, algorithm="HMAC_SHA_256")


def _wrap(public_der: bytes, material: bytes) -> bytes:
    public = serialization.load_der_public_key(public_der)
    assert isinstance(public, rsa.RSAPublicKey)
    return public.encrypt(material, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))


def test_imported_material_its_token_expiry_and_its_own_expiry(tmp_path: Path) -> None:
    now = [time.time()]  # the keystore's clock, moved by the test: a token lives 24 hours
    store = Keystore(tmp_path / "ks", init=True, clock=lambda: now[0])
    key = store.create_key("", origin="external")
    assert key.state is KeyState.PENDING_IMPORT
    with pytest.raises(InvalidState):
        store.encrypt_data_key(key.key_id, b"m")
    material = os.urandom(32)
    stale = store.get_parameters_for_import(key.key_id, wrapping_algorithm="RSAES_OAEP_SHA_256",
                                            wrapping_key_spec="RSA_2048")  # fmt: skip
    assert stale.valid_to.timestamp() == pytest.approx(now[0] + 86400)
    now[0] += 86401
    with pytest.raises(InvalidArgument) as raised:
        store.import_key_material(key.key_id, stale.import_token, _wrap(stale.public_key, material))
    assert raised.value.reason is Reason.IMPORT_TOKEN_EXPIRED
    fresh = store.get_parameters_for_import(key.key_id, wrapping_algorithm="RSAES_OAEP_SHA_256",
                                            wrapping_key_spec="RSA_2048")  # fmt: skip
    store.import_key_material(key.key_id, fresh.import_token, _wrap(fresh.public_key, material), valid_to=now[0] + 60)
    blob = store.encrypt_data_key(key.key_id, b"order 7").ciphertext
    assert material not in (tmp_path / "ks" / "keystore.db").read_bytes()  # sealed like any key material
    now[0] += 61  # the material expired: refused at once, and forgotten by the next maintenance pass
    with pytest.raises(InvalidState):
        store.decrypt_data_key(key.key_id, blob)
    store.run_due_work()
    assert store.describe_key(key.key_id).state is KeyState.PENDING_IMPORT
    with pytest.raises(InvalidArgument) as raised:  # another material than the first is refused
        store.import_key_material(key.key_id, fresh.import_token, _wrap(fresh.public_key, os.urandom(32)))
    assert raised.value.reason is Reason.KEY_MATERIAL_INCORRECT
    store.import_key_material(key.key_id, fresh.import_token, _wrap(fresh.public_key, material))
    assert store.decrypt_data_key(key.key_id, blob) == b"order 7"
    with pytest.raises(InvalidArgument) as raised:
        store.import_key_material(store.create_key("").key_id, fresh.import_token, b"x")
    assert raised.value.reason is Reason.UNSUPPORTED_OPERATION  # a key of origin kms takes no material
