"""Scan the server log and the audit log for every secret the test saw: none may appear."""

from __future__ import annotations

import hashlib
import os

import yaml
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkkms.v2 import (
    CreateDatakeyRequest,
    CreateDatakeyRequestBody,
    CreateKeyRequest,
    CreateKeyRequestBody,
    CreateRandomRequest,
    DecryptDatakeyRequest,
    DecryptDatakeyRequestBody,
    EncryptDatakeyRequest,
    EncryptDatakeyRequestBody,
    GenRandomRequestBody,
)

from kubekms.devenv.kmsserver import kms_server


def test_no_key_material_in_server_or_audit_log(tmp_path, sdk_client) -> None:
    secrets_seen: list[str] = []
    with kms_server(tmp_path / "kms", project_id="scan") as server:
        client = sdk_client(server)
        key_id = client.create_key(CreateKeyRequest(body=CreateKeyRequestBody(key_alias="scan-key"))).key_info.key_id
        for _ in range(5):
            created = client.create_datakey(CreateDatakeyRequest(body=CreateDatakeyRequestBody(key_id=key_id)))
            secrets_seen.append(created.plain_text)
            decrypted = client.decrypt_datakey(
                DecryptDatakeyRequest(
                    body=DecryptDatakeyRequestBody(
                        key_id=key_id, cipher_text=created.cipher_text, datakey_cipher_length="32"
                    )
                )
            )
            secrets_seen.append(decrypted.data_key)
            dek = os.urandom(32)
            secrets_seen.append(dek.hex())
            client.encrypt_datakey(
                EncryptDatakeyRequest(
                    body=EncryptDatakeyRequestBody(
                        key_id=key_id, plain_text=(dek + hashlib.sha256(dek).digest()).hex(), datakey_plain_length="32"
                    )
                )
            )
            # failing calls that carry key material must not echo it either
            bad = os.urandom(32)
            secrets_seen.append(bad.hex())
            try:
                client.encrypt_datakey(
                    EncryptDatakeyRequest(
                        body=EncryptDatakeyRequestBody(
                            key_id=key_id, plain_text=(bad + bytes(32)).hex(), datakey_plain_length="32"
                        )
                    )
                )
            except ClientRequestException as error:
                assert bad.hex() not in error.error_msg
            random = client.create_random(CreateRandomRequest(body=GenRandomRequestBody(random_data_length="256")))
            secrets_seen.append(random.random_data)
        for name in ("admin",):
            secrets_seen.append(yaml.safe_load(server.credentials_file(name).read_text())["secret_key"])
        server.stop()  # flushes the audit buffer
        logs = {"server.log": server.log.read_text(), "audit.log": server.audit_log.read_text()}
    assert logs["audit.log"].count("\n") >= 5 * 5 + 1  # the audit log did record the calls
    for name, text in logs.items():
        lowered = text.lower()
        leaked = [secret[:8] + "..." for secret in secrets_seen if secret.lower() in lowered]
        assert not leaked, f"{name} contains key material: {leaked}"
