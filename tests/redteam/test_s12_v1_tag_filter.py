"""list-keys-by-tags (``POST .../kms/resource_instances/action``) attacked over a real server: the request's
``matches`` (Huawei's search field, ``resource_name``: the key's alias, matched in part) narrows what the tags
find; it was ignored, so a caller naming one key by tag and name was answered with every key of that tag."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from kubekms.devenv.kmsserver import KMSServer, kms_server
from kubekms.providers import Credentials
from kubekms.wire.signing import sign_headers

PROJECT = "proj-s12tf"
PATH = f"/v1.0/{PROJECT}/kms/resource_instances/action"
TAGS = [{"key": "team", "values": ["blue"]}]


def v1_call(server: KMSServer, principal: str, method: str, path: str, body: Any) -> tuple[int, Any]:
    """One v1.0 request signed SDK-HMAC-SHA256 as ``principal`` with ``body`` as JSON: (status, JSON answer)."""
    data, url = json.dumps(body).encode(), f"{server.endpoint}{path}"
    headers = sign_headers(method, url, {"Content-Type": "application/json"}, data,
                           Credentials.from_file(server.credentials_file(principal)))  # fmt: skip
    answer = requests.request(method, url, data=data, headers=headers, timeout=20)
    return answer.status_code, answer.json()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("s12tf"), project_id=PROJECT) as running:
        for alias in ("s12tf-alpha", "s12tf-beta", "other-alpha"):
            status, made = v1_call(running, "admin", "POST", f"/v1.0/{PROJECT}/kms/create-key", {"key_alias": alias})
            assert status == 200, made
            key_id = made["key_info"]["key_id"]
            tag = {"action": "create", "tags": [{"key": "team", "value": "blue"}]}
            assert v1_call(running, "admin", "POST", f"/v1.0/{PROJECT}/kms/{key_id}/tags/action", tag)[0] == 200
        yield running


def _filter(server: KMSServer, body: dict[str, Any]) -> tuple[int, Any]:
    return v1_call(server, "admin", "POST", PATH, body)


def test_without_matches_every_key_of_the_tag_is_found(server: KMSServer) -> None:
    status, answer = _filter(server, {"action": "filter", "tags": TAGS})
    assert status == 200, answer
    assert sorted(item["resource_name"] for item in answer["resources"]) == ["other-alpha", "s12tf-alpha", "s12tf-beta"]


def test_matches_resource_name_narrows_filter_and_count(server: KMSServer) -> None:
    matches = [{"key": "resource_name", "value": "alpha"}]
    status, answer = _filter(server, {"action": "filter", "tags": TAGS, "matches": matches})
    assert status == 200, answer
    assert sorted(item["resource_name"] for item in answer["resources"]) == ["other-alpha", "s12tf-alpha"]
    assert answer["total_count"] == 2
    status, counted = _filter(server, {"action": "count", "tags": TAGS, "matches": matches})
    assert (status, counted) == (200, {"total_count": 2})
    status, answer = _filter(server, {"action": "filter", "tags": TAGS,
                                      "matches": [{"key": "resource_name", "value": "s12tf-beta"}]})  # fmt: skip
    assert status == 200, answer
    assert [item["resource_name"] for item in answer["resources"]] == ["s12tf-beta"]


@pytest.mark.parametrize(
    "matches",
    [
        [{"key": "resource_name", "value": ""}],
        [{"key": "resource_name"}],
        [{"key": "resource_name", "value": 5}],
        [{"key": "resource_name", "value": "a" * 256}],
        [{"key": "resource_id", "value": "alpha"}],
        [{"value": "alpha"}],
        "resource_name",
        ["resource_name"],
    ],
)
def test_a_matches_entry_the_server_cannot_apply_is_refused_not_ignored(server: KMSServer, matches: Any) -> None:
    status, answer = _filter(server, {"action": "filter", "tags": TAGS, "matches": matches})
    assert status == 400, answer
    assert answer["error"]["error_code"].startswith("KMS.")
    assert "resources" not in answer
