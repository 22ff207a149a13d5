"""The real Huawei SDK's list_kms_tags (``GET .../kms/tags``) against our server: every tag key of the project's
keys with its values, account-wide as list-keys (a principal limited to some keys is refused)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from huaweicloudsdkkms.v2 import (
    CreateKmsTagRequest,
    CreateKmsTagRequestBody,
    KmsClient,
    ListKmsTagsRequest,
    TagItem,
)
from test_sdk_lifecycle import create_key, expect_error

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server

OWN_KEY = "project-tags-own"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    principals = [Principal("one-key", keys=(OWN_KEY,))]
    with kms_server(tmp_path_factory.mktemp("kms"), project_id="proj1", principals=principals) as running:
        yield running


def tag(client: KmsClient, key_id: str, tag_key: str, value: str) -> None:
    body = CreateKmsTagRequestBody(tag=TagItem(key=tag_key, value=value))
    client.create_kms_tag(CreateKmsTagRequest(key_id=key_id, body=body))


def project_tags(client: KmsClient) -> dict[str, list[str]]:
    return {item.key: item.values for item in client.list_kms_tags(ListKmsTagsRequest()).tags}


def test_the_projects_tag_keys_with_their_values(
    server: KMSServer, client: KmsClient, sdk_client: Callable[..., KmsClient]
) -> None:
    assert project_tags(client) == {}
    first, second = create_key(client, OWN_KEY), create_key(client, "project-tags-other")
    tag(client, first, "env", "prod")
    tag(client, second, "env", "dev")
    tag(client, second, "a/b:c", "x")
    tag(client, first, "team", "x")
    assert project_tags(client) == {"a/b:c": ["x"], "env": ["dev", "prod"], "team": ["x"]}
    expect_error(lambda: project_tags(sdk_client(server, "one-key")), 403, "KMS.0306")
