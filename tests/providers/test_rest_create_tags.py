"""create-key with tags on a kubekms server: the key and its tags in one call, authorised as tagging.

The operator finds its keys again by their owner tag; a key created and tagged in two calls is left
untagged when the caller dies between them (an operator leader killed mid-creation). Our server takes
the tags with create-key (a kubekms extension); Huawei's create-key has none, so provider
``huaweicloud`` still makes two calls.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from kubekms.backend import KeyState
from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server
from kubekms.errors import AccessDenied, InvalidArgument, Reason
from kubekms.providers import open_backend
from kubekms.wire.v1 import errors as v1_errors

CREATOR = Principal("creator", actions=("create-key", "describe-key", "list-key-tags"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("create-tags"), principals=[CREATOR]) as running:
        yield running


def _audit_operations(server: KMSServer, key_id: str, last: str) -> list[str]:
    """The audited operations on ``key_id`` up to ``last`` (the log is flushed in batches: wait for it)."""
    deadline = time.monotonic() + 20
    while True:
        lines = server.audit_log.read_text().splitlines() if server.audit_log.exists() else []
        operations = [record["operation"] for record in map(json.loads, lines) if record.get("key_id") == key_id]
        if last in operations or time.monotonic() > deadline:
            return operations
        time.sleep(0.05)


async def _call(server: KMSServer, operation: str, *args: Any, principal: str = "admin", **kwargs: Any) -> Any:
    backend = await open_backend(server.backend_config(principal))
    try:
        return await getattr(backend, operation)(*args, **kwargs)
    finally:
        await backend.close()


async def _create(server: KMSServer, principal: str, alias: str, tags: dict[str, str]) -> Any:
    return await _call(server, "create_key", alias, tags=tags, principal=principal)


async def test_a_key_and_its_tags_are_written_by_one_create_key(server: KMSServer) -> None:
    key = await _create(server, "admin", "tagged-at-birth", {"owner-uid": "u-1", "team": "a"})
    assert key.tags == {"owner-uid": "u-1", "team": "a"}
    assert await _call(server, "list_tags", key.key_id) == {"owner-uid": "u-1", "team": "a"}
    # the read above is audited after the creation: had tagging been a second call, it would sit between
    operations = _audit_operations(server, key.key_id, "list-key-tags")
    # neither a tagging call nor a describe-key: create-key's answer carries the key's details
    assert operations == ["create-key", "list-key-tags"]


async def test_the_created_key_is_described_by_create_keys_answer(server: KMSServer) -> None:
    key = await _call(server, "create_key", "described-at-birth", description="from the answer")
    assert key == await _call(server, "describe_key", key.key_id)
    assert (key.state, key.current_version, key.description) == (KeyState.ENABLED, 1, "from the answer")


async def test_tags_at_creation_need_the_tagging_permission_and_a_refusal_creates_nothing(server: KMSServer) -> None:
    before = (await _call(server, "list_keys")).total
    with pytest.raises(AccessDenied) as refused:
        await _create(server, "creator", "creator-tagged", {"owner-uid": "u-2"})
    assert refused.value.reason is Reason.OPERATION_DENIED and "batch-key-tags" in refused.value.message
    assert (await _call(server, "list_keys")).total == before
    untagged = await _create(server, "creator", "creator-plain", {})
    assert untagged.tags == {}


async def test_malformed_creation_tags_are_refused_before_any_key_exists(server: KMSServer) -> None:
    before = (await _call(server, "list_keys")).total
    with pytest.raises(InvalidArgument) as refused:
        await _create(server, "admin", "bad-tags", {"": "x"})
    assert v1_errors.error_code(refused.value).startswith("KMS.04")
    assert (await _call(server, "list_keys")).total == before
