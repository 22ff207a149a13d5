"""Provider ``huaweicloud``: a region that is not a region name is refused, not pasted into a host name.

Without an endpoint the provider builds ``https://kms.{region}.myhuaweicloud.com``. The region went
in unchecked, so ``eu-de.example.net:8443/`` made ``https://kms.eu-de.example.net:8443/.myhuaweicloud.com``:
every signed request, encrypt-datakey's plaintext data key among them, went to another host that the
config nowhere names as an endpoint. Nothing is connected to here: the refusal comes at open.
"""

from __future__ import annotations

import pytest

from kubekms.credentials import Credentials
from kubekms.errors import InvalidArgument
from kubekms.providers import BackendConfig, open_backend
from kubekms.providers.rest import RestBackend


def _config(region: str) -> BackendConfig:
    return BackendConfig(
        provider="huaweicloud", project_id="0a1b2c3d", region=region, credentials=Credentials("AKTEST", "sk-test")
    )


@pytest.mark.parametrize(
    "region", ["eu-de.example.net:8443/", "example.net/", "eu-de@example.net", "EU DE", "eu-de/../x", "-", "a..b"]
)
async def test_a_region_that_is_not_a_region_name_is_refused(region: str) -> None:
    with pytest.raises(InvalidArgument, match="region"):
        backend = await open_backend(_config(region))
        await backend.close()


@pytest.mark.parametrize("region", ["cn-north-4", "eu-de", "ap-southeast-1", "la-south-2"])
async def test_a_region_name_makes_the_clouds_endpoint(region: str) -> None:
    backend = await open_backend(_config(region))
    try:
        assert isinstance(backend, RestBackend)
        assert backend.endpoint == f"https://kms.{region}.myhuaweicloud.com"
    finally:
        await backend.close()
