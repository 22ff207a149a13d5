"""Messages under several keys of different providers: any one of them alone decrypts."""

from __future__ import annotations

import io

from aws_encryption_sdk.internal.formatting.deserialize import deserialize_header
from envelope_fixtures import PROVIDERS, call, new_key

from kubekms.envelope import Envelope, KeyRef, Keyring, NoKeyCanDecrypt
from kubekms.providers import BackendConfig


def test_each_key_alone_decrypts_a_message_under_every_provider(configs: dict[str, BackendConfig]) -> None:
    keys = {provider: new_key(configs[provider]) for provider in PROVIDERS}
    refs = [KeyRef(provider, alias) for provider, (alias, _) in keys.items()]
    plaintext = b"disaster recovery " * 1000
    with Keyring(configs, refs) as keyring:
        message = Envelope(keyring).encrypt(plaintext, {"app": "billing"})

    header, _ = deserialize_header(io.BytesIO(message))
    assert len(header.encrypted_data_keys) == len(PROVIDERS)

    for provider in PROVIDERS:
        with Keyring({provider: configs[provider]}) as keyring:
            assert Envelope(keyring).decrypt(message, {"app": "billing"}) == plaintext, provider


def test_a_disabled_key_is_skipped_and_all_reasons_are_given(configs: dict[str, BackendConfig]) -> None:
    kubekms_alias, kubekms_id = new_key(configs["kubekms"])
    local_alias, local_id = new_key(configs["local"])
    two = {"kubekms": configs["kubekms"], "local": configs["local"]}
    with Keyring(two, [KeyRef("kubekms", kubekms_alias), KeyRef("local", local_alias)]) as keyring:
        envelope = Envelope(keyring)
        message = envelope.encrypt(b"payload", {})
        call(configs["kubekms"], "disable_key", kubekms_id)
        assert envelope.decrypt(message) == b"payload"  # through the local key
        call(configs["local"], "disable_key", local_id)
        try:
            envelope.decrypt(message)
        except NoKeyCanDecrypt as error:
            assert f"kubekms:{kubekms_id}" in str(error) and f"local:{local_id}" in str(error)
            # each backend's refusal, in its own words: the v1.0 wire's code, the local keystore's reason
            assert "kubekms: KMS.0209:" in str(error) and "local: key_disabled:" in str(error)
        else:
            raise AssertionError("decrypted with both keys disabled")
