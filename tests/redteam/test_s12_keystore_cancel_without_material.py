"""A key of imported material cancelled out of its deletion without material waits for its material again.

Cancelling a deletion made every key Disabled. A key of origin external whose material was never imported, was
deleted or had expired (PendingImport) came back Disabled with no material, and enable_key then made it Enabled:
a key listed as usable whose every encryption failed with "key ... has no version 1" (InvalidCiphertext), a
ciphertext error for a request that named no ciphertext. It comes back PendingImport, as deletion or expiry of
its material left it; a key that holds its material still comes back Disabled.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kubekms.backend import KeyState
from kubekms.errors import InvalidState
from kubekms.keystore import Keystore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Keystore]:
    keystore = Keystore(tmp_path / "ks", init=True)
    yield keystore
    keystore.close()


def _import(store: Keystore, key_id: str, material: bytes) -> None:
    parameters = store.get_parameters_for_import(
        key_id, wrapping_algorithm="RSAES_OAEP_SHA_256", wrapping_key_spec="RSA_2048"
    )
    public = serialization.load_der_public_key(parameters.public_key)
    assert isinstance(public, rsa.RSAPublicKey)
    wrapped = public.encrypt(material, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
    store.import_key_material(key_id, parameters.import_token, wrapped)


@pytest.mark.parametrize("history", ["never imported", "material deleted"])
def test_cancelled_without_material_it_is_pending_import(store: Keystore, history: str) -> None:
    key_id = store.create_key("", origin="external").key_id
    material = os.urandom(32)
    if history == "material deleted":
        _import(store, key_id, material)
        blob = store.encrypt_data_key(key_id, b"order 7").ciphertext
        store.delete_imported_key_material(key_id)
    store.schedule_key_deletion(key_id, 7)
    assert store.cancel_key_deletion(key_id).state is KeyState.PENDING_IMPORT
    with pytest.raises(InvalidState):
        store.enable_key(key_id)  # not Enabled without material
    assert store.describe_key(key_id).state is KeyState.PENDING_IMPORT
    _import(store, key_id, material)  # the same material brings it back
    assert store.describe_key(key_id).state is KeyState.ENABLED
    if history == "material deleted":
        assert store.decrypt_data_key(key_id, blob) == b"order 7"


def test_cancelled_with_its_material_it_is_disabled(store: Keystore) -> None:
    key_id = store.create_key("", origin="external").key_id
    _import(store, key_id, os.urandom(32))
    store.schedule_key_deletion(key_id, 7)
    assert store.cancel_key_deletion(key_id).state is KeyState.DISABLED
    assert store.enable_key(key_id).state is KeyState.ENABLED
    assert store.encrypt_data_key(key_id, b"m").key_id == key_id
