"""``Recipient`` (a Nitro Enclaves attestation document) on the AWS wire: refused, never ignored.

On AWS a call with Recipient answers no Plaintext: the secret comes back only as CiphertextForRecipient, sealed
to the enclave's public key. This server verifies no attestation; before, it ignored the field and answered the
plaintext in the clear to a caller who had asked that it never leave KMS unsealed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import botocore.exceptions
import pytest

from kubekms.devenv.kmsserver import KMSServer, kms_server

RECIPIENT = {"KeyEncryptionAlgorithm": "RSAES_OAEP_SHA_256", "AttestationDocument": b"\x84" + b"\0" * 64}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("kms-recipient")) as running:
        yield running


@pytest.mark.parametrize("operation", ["GenerateDataKey", "Decrypt", "GenerateDataKeyPair", "GenerateRandom"])
def test_a_call_with_a_recipient_is_refused_without_its_plaintext(server: KMSServer, operation: str) -> None:
    kms = server.aws_client()
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    fields: dict[str, Any] = {
        "GenerateDataKey": {"KeyId": key_id, "KeySpec": "AES_256"},
        "Decrypt": {"CiphertextBlob": kms.encrypt(KeyId=key_id, Plaintext=b"secret")["CiphertextBlob"]},
        "GenerateDataKeyPair": {"KeyId": key_id, "KeyPairSpec": "ECC_NIST_P256"},
        "GenerateRandom": {"NumberOfBytes": 16},
    }[operation]
    call = getattr(kms, _snake(operation))
    call(**fields)  # fine without a Recipient
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call(Recipient=RECIPIENT, **fields)
    response = raised.value.response
    assert response["Error"]["Code"] == "ValidationException"
    assert "Recipient" in response["Error"]["Message"]
    assert not {"Plaintext", "PrivateKeyPlaintext", "CiphertextForRecipient"} & set(response)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
