"""Credentials that cannot travel in an HTTP header, through the providers against a real server (both wires).

A Secret made with ``echo KEY | base64`` holds the access key with a trailing newline. aiohttp
refuses to send such a header with a bare ValueError ("Potential header injection attack"), which
escaped the provider: the operator's KMSBackend handler failed with a traceback and no condition,
the plugin's poll likewise. Provider aws (boto3) failed it as an HTTPClientError, reported as an
outage (Unavailable) and retried. The providers now refuse the credential itself, precisely
(Unauthenticated), never echoing the key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kubekms.credentials import Credentials
from kubekms.devenv.kmsserver import KMSServer, kms_server
from kubekms.errors import Reason, Unauthenticated
from kubekms.providers import BackendConfig, open_backend


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("kms"), project_id="proj1") as running:  # huaweicloud needs a project
        yield running


def describe_with(server: KMSServer, provider: str, credentials: Credentials) -> BaseException | None:
    async def run() -> BaseException | None:
        config = BackendConfig(provider=provider, endpoint=server.endpoint, project_id=server.project_id,
                               region="eu-west-1", credentials=credentials)  # fmt: skip
        try:
            backend = await open_backend(config)
        except Exception as error:  # aws checks the credential as it opens
            return error
        try:
            await backend.list_keys(limit=1)
        except Exception as error:  # the test inspects whatever escaped
            return error
        finally:
            await backend.close()
        return None

    return asyncio.run(run())


@pytest.mark.parametrize(
    ("field", "suffix"),
    [("access_key", "\n"), ("access_key", "\r\nX-Injected: 1"), ("access_key", " "), ("security_token", "\n")],
)
@pytest.mark.parametrize("provider", ["kubekms", "huaweicloud", "aws"])
def test_a_credential_with_a_control_character_is_refused_precisely(
    server: KMSServer, provider: str, field: str, suffix: str
) -> None:
    real = yaml.safe_load(Path(server.credentials_file("admin")).read_text())
    values = {"access_key": real["access_key"], "secret_key": real["secret_key"], "security_token": ""}
    values[field] += suffix
    error = describe_with(server, provider, Credentials(**values))
    assert isinstance(error, Unauthenticated), repr(error)
    assert error.reason is Reason.CREDENTIAL_MISSING
    assert field in error.message and "printable ASCII" in error.message
    assert real["access_key"] not in error.message and real["secret_key"] not in error.message


@pytest.mark.parametrize("provider", ["kubekms", "aws"])
def test_the_same_credential_without_the_newline_works(server: KMSServer, provider: str) -> None:
    real = yaml.safe_load(Path(server.credentials_file("admin")).read_text())
    assert describe_with(server, provider, Credentials(real["access_key"], real["secret_key"])) is None
