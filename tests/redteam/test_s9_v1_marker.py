"""4234bfa's marker (``kubekms/encrypt-data\\0`` sealed before the caller's AAD) attacked through Huawei's SDK
against a real server: the caller's own ``additional_authenticated_data`` may hold a NUL (JSON ``\\u0000``), so a
caller that starts its AAD with the marker's bytes crosses between the kinds the marker keeps apart.

``dk-only`` may call decrypt-datakey (not decrypt-data) on ``s9m-a``; ``re-data`` may call re-encrypt and
decrypt-data (not decrypt-datakey) on it. Neither may get the other kind's plaintext."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator

import pytest
import yaml
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkkms.v2 import (
    CreateDatakeyRequest,
    CreateDatakeyRequestBody,
    CreateKeyRequest,
    CreateKeyRequestBody,
    CreateRsaDatakeyPairRequest,
    CreateRsaDatakeyPairRequestBody,
    DecryptDatakeyRequest,
    DecryptDatakeyRequestBody,
    DecryptDataRequest,
    DecryptDataRequestBody,
    EncryptDatakeyRequest,
    EncryptDatakeyRequestBody,
    EncryptDataRequest,
    EncryptDataRequestBody,
    KmsClient,
    ReEncryptRequest,
    ReEncryptRequestBody,
)

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server
from kubekms.server.v1_data_keys import DATA_AAD_MARKER

PROJECT = "proj-s9m"
MARKER = DATA_AAD_MARKER.decode()  # "kubekms/encrypt-data\0": valid text, sent as JSON's \u0000
DK_ONLY = Principal("dk-only", actions=("decrypt-datakey",), keys=("s9m-a",), projects=(PROJECT,))
RE_DATA = Principal("re-data", actions=("re-encrypt", "decrypt-data"), keys=("s9m-a",), projects=(PROJECT,))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("s9m"), project_id=PROJECT, principals=(DK_ONLY, RE_DATA)) as running:
        yield running


def _sdk(server: KMSServer, name: str) -> KmsClient:
    credentials = yaml.safe_load(server.credentials_file(name).read_text())
    basic = BasicCredentials(credentials["access_key"], credentials["secret_key"], PROJECT)
    return KmsClient.new_builder().with_credentials(basic).with_endpoint(server.endpoint).build()


@pytest.fixture(scope="module")
def key_id(server: KMSServer) -> str:
    made = _sdk(server, "admin").create_key(CreateKeyRequest(body=CreateKeyRequestBody(key_alias="s9m-a")))
    return str(made.key_info.key_id)


def _refused(call: Callable[[], object]) -> tuple[int, str]:
    with pytest.raises(ClientRequestException) as raised:
        call()
    return raised.value.status_code, str(raised.value.error_code)


def test_decrypt_datakey_with_the_markers_bytes_as_aad_does_not_open_encrypt_data(
    server: KMSServer, key_id: str
) -> None:
    secret = "encrypt-data's plaintext, decrypt-data's alone to open"
    sealed = _sdk(server, "admin").encrypt_data(
        EncryptDataRequest(body=EncryptDataRequestBody(key_id=key_id, plain_text=secret))
    )
    as_hex = base64.b64decode(sealed.cipher_text).hex()
    body = DecryptDatakeyRequestBody(key_id=key_id, cipher_text=as_hex, additional_authenticated_data=MARKER)
    status, _ = _refused(lambda: _sdk(server, "dk-only").decrypt_datakey(DecryptDatakeyRequest(body=body)))
    assert 400 <= status < 500


def test_decrypt_datakey_with_the_markers_bytes_as_aad_does_not_open_a_key_pairs_private_key(
    server: KMSServer, key_id: str
) -> None:
    pair = _sdk(server, "admin").create_rsa_datakey_pair(
        CreateRsaDatakeyPairRequest(
            body=CreateRsaDatakeyPairRequestBody(key_id=key_id, key_spec="RSA_2048", with_plain_text=False)
        )
    )
    as_hex = base64.b64decode(pair.private_key_cipher_text).hex()
    body = DecryptDatakeyRequestBody(key_id=key_id, cipher_text=as_hex, additional_authenticated_data=MARKER)
    status, _ = _refused(lambda: _sdk(server, "dk-only").decrypt_datakey(DecryptDatakeyRequest(body=body)))
    assert 400 <= status < 500


def test_re_encrypt_does_not_turn_a_data_key_into_what_decrypt_data_opens(server: KMSServer, key_id: str) -> None:
    made = _sdk(server, "admin").create_datakey(
        CreateDatakeyRequest(body=CreateDatakeyRequestBody(key_id=key_id, datakey_length="256"))
    )
    re_data = _sdk(server, "re-data")
    body = ReEncryptRequestBody(destination_key_id=key_id, cipher_text=made.cipher_text,
                                destination_additional_authenticated_data=MARKER)  # fmt: skip
    status, _ = _refused(lambda: re_data.re_encrypt(ReEncryptRequest(body=body)))
    assert 400 <= status < 500
    # and the plain re-encrypt keeps the kind: decrypt-data still does not open the data key
    plain = re_data.re_encrypt(ReEncryptRequest(body=ReEncryptRequestBody(destination_key_id=key_id,
                                                                          cipher_text=made.cipher_text)))  # fmt: skip
    blob = base64.b64encode(bytes.fromhex(plain.cipher_text)).decode()
    _refused(lambda: re_data.decrypt_data(DecryptDataRequest(body=DecryptDataRequestBody(cipher_text=blob))))


def test_a_data_key_sealed_with_the_markers_bytes_is_refused_not_made(server: KMSServer, key_id: str) -> None:
    """encrypt-datakey / create-datakey with such an AAD would make a data key decrypt-data opens."""
    admin = _sdk(server, "admin")
    status, _ = _refused(lambda: admin.create_datakey(CreateDatakeyRequest(body=CreateDatakeyRequestBody(
        key_id=key_id, datakey_length="256", additional_authenticated_data=MARKER + "x"))))  # fmt: skip
    assert 400 <= status < 500
    dek = bytes(range(32))

    plain = (dek + hashlib.sha256(dek).digest()).hex()
    body = EncryptDatakeyRequestBody(key_id=key_id, plain_text=plain, datakey_plain_length="32",
                                     additional_authenticated_data=MARKER)  # fmt: skip
    status, _ = _refused(lambda: admin.encrypt_datakey(EncryptDatakeyRequest(body=body)))
    assert 400 <= status < 500
