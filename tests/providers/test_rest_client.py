"""Provider configuration, health and the ``huaweicloud`` code path (pointed at our server: the same wire)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server
from kubekms.devenv.pki import generate_pki
from kubekms.devenv.processes import ManagedProcess, free_port, kubekms_argv, log_tail
from kubekms.errors import InvalidArgument, Unauthenticated, Unavailable
from kubekms.providers import BackendConfig, Credentials, open_backend
from kubekms.providers.rest import CLOUD_DATA_KEY_LENGTH, RestBackend, plaintext_length

CREDENTIALS = Credentials(access_key="AK", secret_key="SK")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    principals = [
        Principal("datakeys-only", actions=("create-datakey", "decrypt-datakey")),
        Principal("describer", actions=("describe-key",)),
    ]
    with kms_server(tmp_path_factory.mktemp("rest-kms"), principals=principals, project_id="0123abcd") as running:
        yield running


async def test_huaweicloud_endpoint_defaults_from_the_region() -> None:
    config = BackendConfig(provider="huaweicloud", region="ap-southeast-1", project_id="0123", credentials=CREDENTIALS)
    backend = await open_backend(config)
    try:
        assert isinstance(backend, RestBackend)
        assert backend.endpoint == "https://kms.ap-southeast-1.myhuaweicloud.com"
        assert backend.project_id == "0123"
    finally:
        await backend.close()


@pytest.mark.parametrize(
    ("config", "complaint"),
    [
        (BackendConfig(provider="huaweicloud", region="eu-de", credentials=CREDENTIALS), "project_id"),
        (BackendConfig(provider="huaweicloud", project_id="0123", credentials=CREDENTIALS), "endpoint or a region"),
        (BackendConfig(provider="kubekms", credentials=CREDENTIALS), "needs an endpoint"),
        (BackendConfig(provider="kubekms", endpoint="127.0.0.1:1", credentials=CREDENTIALS), "http:// or https://"),
        (BackendConfig(provider="kubekms", endpoint="http://127.0.0.1:1"), "needs credentials"),
    ],
)
async def test_incomplete_configs_are_refused(config: BackendConfig, complaint: str) -> None:
    with pytest.raises(InvalidArgument, match=complaint):
        await open_backend(config)


async def test_missing_ca_file_is_refused(tmp_path: Path) -> None:
    config = BackendConfig(
        provider="kubekms", endpoint="https://127.0.0.1:1", credentials=CREDENTIALS, ca_file=tmp_path / "none.pem"
    )
    with pytest.raises(InvalidArgument, match="CA bundle"):
        await open_backend(config)


async def test_huaweicloud_provider_round_trip_on_the_same_wire(server: KMSServer) -> None:
    config = BackendConfig(
        provider="huaweicloud",
        endpoint=server.endpoint,
        project_id=server.project_id,
        credentials_file=server.credentials_file("admin"),
    )
    backend = await open_backend(config)
    try:
        key = await backend.create_key("hw-key", tags={"env": "test"})
        data_key = await backend.create_data_key(key.key_id, aad=b"ctx")
        # the cloud needs datakey_cipher_length: this provider sends it, and our server checks it
        assert await backend.decrypt_data_key(key.key_id, data_key.ciphertext, aad=b"ctx") == data_key.plaintext
        assert [meta.key_id for meta in await backend.find_keys_by_tag("env", "test")] == [key.key_id]
    finally:
        await backend.close()


@pytest.mark.parametrize("provider", ["huaweicloud", "kubekms"])
async def test_decrypt_sends_the_data_keys_real_length(server: KMSServer, provider: str) -> None:
    """Our server refuses a datakey_cipher_length that is not the data key's (KMS.2204), as Huawei's does:
    with a fixed 32, 16- and 64-byte data keys did not decrypt through provider huaweicloud."""
    config = BackendConfig(provider=provider, endpoint=server.endpoint, project_id=server.project_id,
                           credentials_file=server.credentials_file("admin"))  # fmt: skip
    backend = await open_backend(config)
    try:
        key = await backend.create_key(f"lengths-{provider}")
        for length in (16, 32, 64):
            made = await backend.create_data_key(key.key_id, length=length)
            assert plaintext_length(made.ciphertext, default=None) == length
            assert await backend.decrypt_data_key(key.key_id, made.ciphertext) == made.plaintext
            wrapped = await backend.encrypt_data_key(key.key_id, bytes(range(length)), aad=b"ns=a")
            assert await backend.decrypt_data_key(key.key_id, wrapped.ciphertext, aad=b"ns=a") == bytes(range(length))
    finally:
        await backend.close()


def test_the_length_of_a_foreign_ciphertext_is_the_providers_default() -> None:
    huawei_example = bytes.fromhex("020098009eeafce122caa5927d2e0200")  # the start of Huawei's documented example
    assert plaintext_length(huawei_example, default=CLOUD_DATA_KEY_LENGTH) == CLOUD_DATA_KEY_LENGTH
    assert plaintext_length(b"", default=None) is None


async def test_health_needs_a_valid_signature_not_a_permission(server: KMSServer, tmp_path: Path) -> None:
    def backend_for(credentials_file: Path) -> BackendConfig:
        return BackendConfig(
            provider="kubekms",
            endpoint=server.endpoint,
            project_id=server.project_id,
            credentials_file=credentials_file,
        )

    limited = await open_backend(backend_for(server.credentials_file("datakeys-only")))
    try:
        await limited.check_health()  # denied gen-random, but the server knows the signature
    finally:
        await limited.close()
    wrong = tmp_path / "wrong.yaml"
    access_key = Credentials.from_file(server.credentials_file("admin")).access_key
    wrong.write_text(f"access_key: {access_key}\nsecret_key: not-the-secret\n")
    impostor = await open_backend(backend_for(wrong))
    try:
        with pytest.raises(Unauthenticated) as refused:
            await impostor.check_health()
        assert refused.value.code == "KMS.0302"
    finally:
        await impostor.close()


async def test_non_utf8_aad_is_refused_before_sending(server: KMSServer) -> None:
    config = BackendConfig(
        provider="kubekms",
        endpoint=server.endpoint,
        project_id=server.project_id,
        credentials_file=server.credentials_file("admin"),
    )
    backend = await open_backend(config)
    try:
        with pytest.raises(InvalidArgument, match="UTF-8"):
            await backend.create_data_key("whatever", aad=b"\xff\xfe")
        with pytest.raises(InvalidArgument, match="128"):
            await backend.create_data_key("whatever", aad=b"a" * 129)
    finally:
        await backend.close()


def _tls_server(tmp_path: Path) -> tuple[ManagedProcess, str, Path, Path]:
    """A ``kubekms server`` with a certificate from a throw-away CA; returns (process, endpoint, CA, credentials)."""
    pki = generate_pki(tmp_path / "pki")
    port = free_port()
    credentials = tmp_path / "admin.yaml"
    credentials.write_text(yaml.safe_dump({"access_key": "AKTLS", "secret_key": "tls-secret"}))
    principals = tmp_path / "principals.yaml"
    principals.write_text(yaml.safe_dump([{"name": "admin", "access_key": "AKTLS", "secret_key": "tls-secret"}]))
    principals.chmod(0o600)
    config = tmp_path / "server.yaml"
    settings = {"listen": f"127.0.0.1:{port}", "state_dir": str(tmp_path / "state"), "principals_file": str(principals)}
    config.write_text(yaml.safe_dump({**settings, "tls_cert": str(pki.serving_cert), "tls_key": str(pki.serving_key)}))
    argv = kubekms_argv("server", "--config", str(config))
    process = ManagedProcess("kubekms-server-tls", [*argv, "--init"], tmp_path / "server.log")
    return process, f"https://127.0.0.1:{port}", pki.ca_cert, credentials


async def test_tls_with_the_configured_ca_and_refusal_without_it(tmp_path: Path) -> None:
    process, endpoint, ca_file, credentials = _tls_server(tmp_path)
    process.start()
    try:
        process.wait_until(lambda: "listening" in log_tail(process.log_path), 60, "listening")
        config = BackendConfig(provider="kubekms", endpoint=endpoint, project_id="tls", credentials_file=credentials)
        trusted = await open_backend(dataclasses.replace(config, ca_file=ca_file))
        try:
            key = await trusted.create_key("over-tls")
            assert (await trusted.describe_key("over-tls")).key_id == key.key_id
        finally:
            await trusted.close()
        untrusted = await open_backend(config)
        try:
            with pytest.raises(Unavailable, match="check ca_file"):
                await untrusted.check_health()
        finally:
            await untrusted.close()
    finally:
        process.stop()


async def test_describe_under_least_privilege_fills_what_it_may_read(
    server: KMSServer, caplog: pytest.LogCaptureFixture
) -> None:
    def config(principal: str) -> BackendConfig:
        return BackendConfig(
            provider="kubekms",
            endpoint=server.endpoint,
            project_id=server.project_id,
            credentials_file=server.credentials_file(principal),
        )

    admin = await open_backend(config("admin"))
    try:
        key = await admin.create_key("least-privilege", tags={"team": "a"})
        await admin.create_alias(key.key_id, "least-privilege-2")
    finally:
        await admin.close()
    describer = await open_backend(config("describer"))
    try:
        with caplog.at_level("WARNING", logger="kubekms.providers.rest"):
            first = await describer.describe_key("least-privilege")
            second = await describer.describe_key(key.key_id)
    finally:
        await describer.close()
    assert first == second
    assert (first.key_id, first.aliases, dict(first.tags)) == (key.key_id, ("least-privilege",), {})
    denied = sorted(record.fields["operation"] for record in caplog.records)  # type: ignore[attr-defined]
    assert denied == ["list-aliases", "list-key-tags"]
