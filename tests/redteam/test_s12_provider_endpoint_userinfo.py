"""An endpoint URL with a user name and password, a query or a fragment is refused when a backend opens.

``https://user:pass@host`` passed the providers' checks. The REST provider then failed every
call with a bare ValueError from aiohttp (no KMSError: a traceback in the plugin and the CLI),
and its refusal of a wrong scheme quoted the endpoint, password included. A query or fragment
took the provider's paths (``/v1.0/{project}/kms/...``) out of the URL's path. The refusals
here happen before any connection, so no server is needed.
"""

from __future__ import annotations

import pytest

from kubekms.credentials import Credentials
from kubekms.errors import InvalidArgument
from kubekms.providers import BackendConfig, open_backend

PASSWORD = "s3cr3t-in-url"


@pytest.mark.parametrize("provider", ["kubekms", "huaweicloud", "aws", "gcp"])
@pytest.mark.parametrize(
    "endpoint",
    [f"https://user:{PASSWORD}@127.0.0.1:1", f"http://{PASSWORD}@127.0.0.1:1/", f"ftp://u:{PASSWORD}@host"],
)
async def test_an_endpoint_with_user_information_is_refused_without_quoting_it(provider: str, endpoint: str) -> None:
    config = BackendConfig(
        provider=provider,
        endpoint=endpoint,
        project_id="p1",
        region="eu-west-1",
        credentials=Credentials("AKTEST", "sk-test"),
        key_ring="ring",
    )
    with pytest.raises(InvalidArgument) as refused:
        await open_backend(config)
    assert PASSWORD not in str(refused.value)


@pytest.mark.parametrize("provider", ["kubekms", "huaweicloud", "aws"])
@pytest.mark.parametrize("endpoint", ["https://127.0.0.1:1?region=x", "https://127.0.0.1:1/#kms", "https://h/?"])
async def test_an_endpoint_with_a_query_or_fragment_is_refused(provider: str, endpoint: str) -> None:
    config = BackendConfig(
        provider=provider,
        endpoint=endpoint,
        project_id="p1",
        region="eu-west-1",
        credentials=Credentials("AKTEST", "sk-test"),
    )
    with pytest.raises(InvalidArgument, match="query or fragment"):
        await open_backend(config)


@pytest.mark.parametrize("provider", ["kubekms", "huaweicloud", "aws", "gcp"])
@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:99999",  # REST: a bare ValueError at every call; aws: misreported
        "http://127.0.0.1:port",
        "http://127.0.0.1:9 ",  # a trailing space or newline (YAML block scalars keep one)
        "http://127.0.0.1:9\n",
        "http://:9",
        "https://",
    ],
)
async def test_an_endpoint_without_a_usable_host_and_port_is_refused(provider: str, endpoint: str) -> None:
    config = BackendConfig(
        provider=provider,
        endpoint=endpoint,
        project_id="p1",
        region="eu-west-1",
        credentials=Credentials("AKTEST", "sk-test"),
        key_ring="ring",
    )
    with pytest.raises(InvalidArgument, match="endpoint"):
        await open_backend(config)
