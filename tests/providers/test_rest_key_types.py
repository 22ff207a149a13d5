"""The v1.0 REST provider creates every key type in Huawei's names (EC_P256, not AWS's ECC_NIST_P256).

Our server's v1.0 wire refuses AWS's curve names as Huawei does, so a provider that sent the
keystore's names would fail here exactly as it would against the real cloud.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kubekms.backend import ECC_KEY_SPECS, RSA_KEY_SPECS
from kubekms.devenv.kmsserver import KMSServer, kms_server
from kubekms.providers import open_backend


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("rest-key-types")) as running:
        yield running


@pytest.mark.parametrize("key_spec", [*ECC_KEY_SPECS, RSA_KEY_SPECS[0]])
async def test_asymmetric_keys_are_created_in_the_wires_names(server: KMSServer, key_spec: str) -> None:
    backend = await open_backend(server.backend_config("admin"))
    try:
        created = await backend.create_key(f"signer-{key_spec.lower()}", key_spec=key_spec, key_usage="SIGN_VERIFY")
        described = await backend.describe_key(created.key_id)
    finally:
        await backend.close()
    assert (created.key_spec, described.key_spec, described.key_usage) == (key_spec, key_spec, "SIGN_VERIFY")
