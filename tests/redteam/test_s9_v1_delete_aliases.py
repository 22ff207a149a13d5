"""v1.0 delete-alias takes a list of aliases; a refused request must delete none of them.

The handler deleted them one by one: ``["a1", "no-such-alias"]`` answered 404 KMS.0207 with ``a1`` already gone, and
``["a2", <the key's key_alias>]`` answered 400 with ``a2`` gone — a careless (or retried) call removed names the
client was told were kept. Real server, signed raw v1.0 requests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from s9_support import v1_call

from kubekms.devenv.kmsserver import KMSServer, kms_server

PROJECT = "proj-s9d"
ALIASES = f"/v1.0/{PROJECT}/kms/aliases"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("s9d"), project_id=PROJECT) as running:
        yield running


def _key_with_aliases(server: KMSServer, name: str, *aliases: str) -> str:
    status, made = v1_call(server, "admin", "POST", f"/v1.0/{PROJECT}/kms/create-key", {"key_alias": name})
    assert status == 200, made
    key_id = str(made["key_info"]["key_id"])
    for alias in aliases:
        status, answer = v1_call(server, "admin", "POST", ALIASES, {"key_id": key_id, "alias": alias})
        assert status == 200, answer
    return key_id


def _aliases(server: KMSServer, key_id: str) -> set[str]:
    status, listed = v1_call(server, "admin", "GET", f"{ALIASES}?key_id={key_id}")
    assert status == 200, listed
    [page] = listed  # Huawei's answer: a list holding one page
    return {entry["alias"] for entry in page["aliases"]}


@pytest.mark.parametrize(
    ("refused", "status", "code"),
    [("s9d-missing", 404, "KMS.0207"), ("{name}", 400, "KMS.0308")],
    ids=["unknown-alias", "key-alias"],
)
def test_a_refused_delete_alias_deletes_none(server: KMSServer, refused: str, status: int, code: str) -> None:
    name = f"s9d-{code[-2:]}"
    key_id = _key_with_aliases(server, name, f"{name}-a1", f"{name}-a2")
    body = {"key_id": key_id, "aliases": [f"{name}-a1", refused.format(name=name), f"{name}-a2"]}
    answered, answer = v1_call(server, "admin", "DELETE", ALIASES, body)
    assert (answered, answer["error"]["error_code"]) == (status, code), answer
    assert _aliases(server, key_id) == {name, f"{name}-a1", f"{name}-a2"}


def test_an_alias_named_twice_is_deleted_once(server: KMSServer) -> None:
    key_id = _key_with_aliases(server, "s9d-twice", "s9d-twice-a1")
    status, answer = v1_call(server, "admin", "DELETE", ALIASES,
                             {"key_id": key_id, "aliases": ["s9d-twice-a1", "s9d-twice-a1"]})  # fmt: skip
    assert status == 200, answer
    assert _aliases(server, key_id) == {"s9d-twice"}


def test_another_keys_alias_is_refused_and_kept(server: KMSServer) -> None:
    mine = _key_with_aliases(server, "s9d-mine", "s9d-mine-a1")
    other = _key_with_aliases(server, "s9d-other", "s9d-other-a1")
    status, answer = v1_call(server, "admin", "DELETE", ALIASES,
                             {"key_id": mine, "aliases": ["s9d-mine-a1", "s9d-other-a1"]})  # fmt: skip
    assert (status, answer["error"]["error_code"]) == (404, "KMS.0207"), answer
    assert _aliases(server, mine) == {"s9d-mine", "s9d-mine-a1"}
    assert _aliases(server, other) == {"s9d-other", "s9d-other-a1"}
