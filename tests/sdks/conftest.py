"""Shared by the official-SDK tests (AWS, Cloud KMS, Huawei): a real ``kubekms server`` and its credentials.

Test modules of any directory under tests/sdks/ can ``import toolchains`` (this directory is put on sys.path)
and use the fixtures below without importing anything.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
import yaml

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server

sys.path.insert(0, str(Path(__file__).parent))

ServerFactory = Callable[..., KMSServer]
SdkEnv = Callable[..., dict[str, str]]


@pytest.fixture(scope="module")
def kms_server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """``start(project_id="default", principals=())``: a running server, stopped at the module's end."""
    with contextlib.ExitStack() as stack:

        def start(*, project_id: str = "default", principals: Sequence[Principal] = ()) -> KMSServer:
            state_dir = tmp_path_factory.mktemp("kms")
            return stack.enter_context(kms_server(state_dir, project_id=project_id, principals=principals))

        yield start


def program_env(server: KMSServer, principal: str = "admin", *, region: str = "eu-west-1") -> dict[str, str]:
    """The environment an SDK program reads: KMS_ENDPOINT, KMS_ACCESS_KEY, KMS_SECRET_KEY, KMS_REGION,
    KMS_PROJECT_ID (credentials never go on a command line)."""
    credentials = yaml.safe_load(server.credentials_file(principal).read_text())
    return {
        "KMS_ENDPOINT": server.endpoint,
        "KMS_ACCESS_KEY": credentials["access_key"],
        "KMS_SECRET_KEY": credentials["secret_key"],
        "KMS_REGION": region,
        "KMS_PROJECT_ID": server.project_id,
    }


@pytest.fixture(scope="session")
def sdk_env() -> SdkEnv:
    """``sdk_env(server, principal="admin", region="eu-west-1")``: see :func:`program_env`."""
    return program_env
