"""Interop with the plain AWS Encryption SDK and its AWS KMS provider, both ways, on our server's AWS wire.

The plain SDK reaches our server the way any AWS application would: botocore with
``AWS_ENDPOINT_URL_KMS`` pointing at it; the key is named by its ARN (strict mode).
"""

from __future__ import annotations

import os
from pathlib import Path

import aws_encryption_sdk
import pytest
from aws_encryption_sdk import CommitmentPolicy, StrictAwsKmsMasterKeyProvider
from envelope_fixtures import aws_arn, new_key, plain_sdk_provider, run, write_yaml

from kubekms.devenv.kmsserver import KMSServer
from kubekms.providers import BackendConfig

PlainSdkKey = tuple[StrictAwsKmsMasterKeyProvider, str, str]  # the provider, the key's alias and id


@pytest.fixture
def plain_sdk_key(
    envelope_server: KMSServer, monkeypatch: pytest.MonkeyPatch, configs: dict[str, BackendConfig]
) -> PlainSdkKey:
    alias, key_id = new_key(configs["aws"])
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", envelope_server.endpoint)
    return plain_sdk_provider(envelope_server, key_id), alias, key_id


def test_kubekms_encrypt_then_plain_sdk_decrypts_and_back(
    tmp_path: Path,
    configs: dict[str, BackendConfig],
    plain_sdk_key: PlainSdkKey,
) -> None:
    provider, alias, key_id = plain_sdk_key
    sdk = aws_encryption_sdk.EncryptionSDKClient(commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT)
    aws_config = write_yaml(tmp_path / "aws.yaml", configs["aws"])
    plaintext = os.urandom(300_000)
    (tmp_path / "plain").write_bytes(plaintext)

    done = run(
        "encrypt",
        *("--backend-config", str(aws_config), "--key", alias, "--context", "origin=kubekms"),
        *(str(tmp_path / "plain"), str(tmp_path / "ours.enc")),
    )
    assert done.returncode == 0, done.stderr
    decrypted, header = sdk.decrypt(source=(tmp_path / "ours.enc").read_bytes(), key_provider=provider)
    assert decrypted == plaintext and header.encryption_context["origin"] == "kubekms"
    assert {edk.key_provider.key_info.decode() for edk in header.encrypted_data_keys} == {aws_arn(key_id)}

    # the reverse: the plain SDK's default (signed) suite, read by kubekms decrypt
    message, _ = sdk.encrypt(source=plaintext, key_provider=provider, encryption_context={"origin": "plain-sdk"})
    (tmp_path / "theirs.enc").write_bytes(message)
    done = run(
        "decrypt",
        *("--backend-config", str(aws_config), "--context", "origin=plain-sdk"),
        *(str(tmp_path / "theirs.enc"), str(tmp_path / "theirs.out")),
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "theirs.out").read_bytes() == plaintext
