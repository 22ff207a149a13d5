"""``kubekms key rename KEY NEW_ALIAS`` against a real server: the provider's update-key-alias over the wire."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from kubekms.cli.main import cli
from kubekms.devenv.kmsserver import KMSServer, kms_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("cli-rename")) as running:
        yield running


@pytest.fixture
def env(server: KMSServer) -> dict[str, str]:
    return {
        "KUBEKMS_ENDPOINT": server.endpoint,
        "KUBEKMS_PROJECT_ID": f"cli-{uuid.uuid4().hex[:10]}",
        "KUBEKMS_CREDENTIALS_FILE": str(server.credentials_file("admin")),
    }


def kubekms(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_key_rename(env: dict[str, str]) -> None:
    created = kubekms(env, "key", "create", "before-rename", "-o", "json")
    assert created.exit_code == 0, created.output
    key_id = json.loads(created.stdout)["key_id"]
    renamed = kubekms(env, "key", "rename", "before-rename", "after-rename", "-o", "json")
    assert renamed.exit_code == 0, renamed.output
    answer = json.loads(renamed.stdout)
    assert (answer["key_id"], answer["alias"], answer["aliases"]) == (key_id, "after-rename", ["after-rename"])
    missing = kubekms(env, "key", "describe", "before-rename")
    assert missing.exit_code != 0 and "before-rename" in missing.output
    taken = kubekms(env, "key", "create", "other-key")
    assert taken.exit_code == 0, taken.output
    refused = kubekms(env, "key", "rename", key_id, "other-key")
    assert refused.exit_code != 0 and "already in use" in refused.output
