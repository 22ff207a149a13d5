"""Provider ``aws`` passes asymmetric and HMAC keys through: here to the kubekms server's own AWS wire."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kubekms.backend import Backend
from kubekms.devenv.kmsserver import KMSServer, kms_server
from kubekms.errors import InvalidArgument, Reason
from kubekms.providers import BackendConfig, open_backend


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("kms-aws-provider-keys"), project_id="default") as running:
        yield running


async def _backend(server: KMSServer) -> Backend:
    config = BackendConfig(provider="aws", endpoint=server.endpoint, region="eu-west-1",
                           credentials_file=server.credentials_file("admin"))  # fmt: skip
    return await open_backend(config)


def test_sign_verify_mac_and_refusals_through_provider_aws(server: KMSServer) -> None:
    async def scenario() -> None:
        backend = await _backend(server)
        try:
            signing = await backend.create_key("signer", key_spec="ECC_NIST_P256", key_usage="SIGN_VERIFY")
            assert (signing.key_spec, signing.key_usage) == ("ECC_NIST_P256", "SIGN_VERIFY")
            signed = await backend.sign("signer", b"m", algorithm="ECDSA_SHA_256")
            assert signed.key_id == signing.key_id
            public = serialization.load_der_public_key(await backend.get_public_key(signing.key_id))
            assert isinstance(public, ec.EllipticCurvePublicKey)
            public.verify(signed.data, b"m", ec.ECDSA(hashes.SHA256()))
            assert await backend.verify(signing.key_id, b"m", signed.data, algorithm="ECDSA_SHA_256")
            assert not await backend.verify(signing.key_id, b"n", signed.data, algorithm="ECDSA_SHA_256")
            mac_key = await backend.create_key("", key_spec="HMAC_384", key_usage="GENERATE_VERIFY_MAC")
            tag = (await backend.generate_mac(mac_key.key_id, b"m", algorithm="HMAC_SHA_384")).data
            assert await backend.verify_mac(mac_key.key_id, b"m", tag, algorithm="HMAC_SHA_384")
            assert not await backend.verify_mac(mac_key.key_id, b"m", tag[::-1], algorithm="HMAC_SHA_384")
            with pytest.raises(InvalidArgument) as raised:
                await backend.create_data_key(signing.key_id)
            assert raised.value.reason is Reason.KEY_USAGE_INVALID  # InvalidKeyUsageException, mapped back
        finally:
            await backend.close()

    asyncio.run(scenario())
