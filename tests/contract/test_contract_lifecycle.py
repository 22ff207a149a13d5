"""Key lifecycle: every transition allowed and refused, the same for every provider."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from kubekms.backend import Backend, KeyState
from kubekms.errors import (
    AlreadyExists,
    Disabled,
    InvalidArgument,
    InvalidState,
    NotFound,
    PendingDeletion,
    Reason,
)


async def test_create_then_describe_by_id_and_alias(backend: Backend, alias: Callable[[str], str]) -> None:
    name = alias("create")
    created = await backend.create_key(name, description="payments", tags={"team": "pay"})
    by_id = await backend.describe_key(created.key_id)
    by_alias = await backend.describe_key(name)
    assert by_id == by_alias == created
    assert created.alias == name
    assert created.description == "payments"
    assert created.state is KeyState.ENABLED
    assert created.current_version == 1
    assert created.key_spec == "AES_256"
    assert dict(created.tags) == {"team": "pay"}
    assert name in created.aliases
    assert abs(created.created_at - datetime.now(UTC)) < timedelta(minutes=1)


async def test_duplicate_alias_is_refused(backend: Backend, alias: Callable[[str], str]) -> None:
    name = alias("dup")
    await backend.create_key(name)
    with pytest.raises(AlreadyExists):
        await backend.create_key(name)


@pytest.mark.parametrize("bad", ["has space", "x" * 256, "ends/default", str(uuid.uuid4())])
async def test_invalid_alias_is_refused(backend: Backend, bad: str) -> None:
    with pytest.raises(InvalidArgument):
        await backend.create_key(bad)
    assert (await backend.list_keys()).total == 0


async def test_unknown_keys_are_not_found(backend: Backend) -> None:
    with pytest.raises(NotFound):
        await backend.describe_key(str(uuid.uuid4()))
    with pytest.raises(NotFound):
        await backend.describe_key("no-such-alias")


async def test_disable_and_enable(backend: Backend, alias: Callable[[str], str]) -> None:
    key = await backend.create_key(alias("toggle"))
    with pytest.raises(InvalidState) as refused:
        await backend.enable_key(key.key_id)
    assert refused.value.reason is Reason.KEY_NOT_DISABLED
    assert (await backend.disable_key(key.key_id)).state is KeyState.DISABLED
    assert (await backend.describe_key(key.key_id)).state is KeyState.DISABLED
    with pytest.raises(InvalidState) as refused:
        await backend.disable_key(key.key_id)
    assert refused.value.reason is Reason.KEY_NOT_ENABLED
    assert (await backend.enable_key(key.key_id)).state is KeyState.ENABLED


async def test_schedule_and_cancel_deletion_leaves_the_key_disabled(
    backend: Backend, alias: Callable[[str], str]
) -> None:
    key = await backend.create_key(alias("delete"))
    pending = await backend.schedule_key_deletion(key.key_id, 7)
    assert pending.state is KeyState.PENDING_DELETION
    assert pending.deletion_date is not None
    assert abs(pending.deletion_date - (datetime.now(UTC) + timedelta(days=7))) < timedelta(minutes=1)
    with pytest.raises(InvalidState) as refused:
        await backend.schedule_key_deletion(key.key_id, 7)
    assert refused.value.reason is Reason.ALREADY_PENDING_DELETION
    for change in (backend.enable_key, backend.disable_key):
        with pytest.raises(PendingDeletion):
            await change(key.key_id)
    cancelled = await backend.cancel_key_deletion(key.key_id)
    assert cancelled.state is KeyState.DISABLED
    assert cancelled.deletion_date is None
    with pytest.raises(InvalidState) as refused:
        await backend.cancel_key_deletion(key.key_id)
    assert refused.value.reason is Reason.NOT_PENDING_DELETION
    assert (await backend.enable_key(key.key_id)).state is KeyState.ENABLED


@pytest.mark.parametrize("days", [6, 1097, 0, -1])
async def test_pending_window_out_of_range(backend: Backend, alias: Callable[[str], str], days: int) -> None:
    key = await backend.create_key(alias("window"))
    with pytest.raises(InvalidArgument) as refused:
        await backend.schedule_key_deletion(key.key_id, days)
    assert refused.value.reason is Reason.PENDING_DAYS_INVALID
    assert (await backend.describe_key(key.key_id)).state is KeyState.ENABLED


async def test_disabled_and_pending_keys_refuse_crypto(backend: Backend, alias: Callable[[str], str]) -> None:
    key = await backend.create_key(alias("crypto"))
    wrapped = await backend.create_data_key(key.key_id)
    await backend.disable_key(key.key_id)
    await _assert_crypto_refused(backend, key.key_id, wrapped.ciphertext, Disabled)
    await backend.enable_key(key.key_id)
    await backend.schedule_key_deletion(key.key_id, 30)
    await _assert_crypto_refused(backend, key.key_id, wrapped.ciphertext, PendingDeletion)


async def _assert_crypto_refused(backend: Backend, key_id: str, ciphertext: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        await backend.create_data_key(key_id)
    with pytest.raises(error):
        await backend.create_data_key_without_plaintext(key_id)
    with pytest.raises(error):
        await backend.encrypt_data_key(key_id, b"k" * 32)
    with pytest.raises(error):
        await backend.decrypt_data_key(key_id, ciphertext)
    with pytest.raises(error):
        await backend.rotate_key(key_id)


async def test_update_description(backend: Backend, alias: Callable[[str], str]) -> None:
    key = await backend.create_key(alias("describe"), description="old")
    assert (await backend.update_description(key.key_id, "new")).description == "new"
    assert (await backend.describe_key(key.key_id)).description == "new"
    with pytest.raises(InvalidArgument):
        await backend.update_description(key.key_id, "x" * 256)


async def test_list_pages_with_markers_and_state_filter(backend: Backend, alias: Callable[[str], str]) -> None:
    created = [await backend.create_key(alias(f"page{i}")) for i in range(5)]
    seen: list[str] = []
    marker: str | None = None
    while True:
        page = await backend.list_keys(limit=2, marker=marker)
        assert page.total == 5
        assert len(page.keys) <= 2
        seen += [meta.key_id for meta in page.keys]
        if page.next_marker is None:
            break
        marker = page.next_marker
    assert seen == [meta.key_id for meta in created]
    for meta in created[:2]:
        await backend.disable_key(meta.key_id)
    disabled = await backend.list_keys(state=KeyState.DISABLED)
    assert {meta.key_id for meta in disabled.keys} == {meta.key_id for meta in created[:2]}
    assert disabled.total == 2
    assert all(meta.state is KeyState.DISABLED for meta in disabled.keys)
    enabled = await backend.list_keys(state=KeyState.ENABLED)
    assert {meta.key_id for meta in enabled.keys} == {meta.key_id for meta in created[2:]}
    assert (await backend.list_keys(state=KeyState.PENDING_DELETION)).keys == []


@pytest.mark.parametrize("limit", [0, 1001])
async def test_list_limit_out_of_range(backend: Backend, limit: int) -> None:
    with pytest.raises(InvalidArgument) as refused:
        await backend.list_keys(limit=limit)
    assert refused.value.reason is Reason.LIST_LIMIT_INVALID


async def test_list_filters_by_key_spec_before_paging(backend: Backend, alias: Callable[[str], str]) -> None:
    symmetric = [await backend.create_key(alias(f"aes{i}")) for i in range(2)]
    try:
        rsa = [(await backend.create_key(alias("rsa"), key_spec="RSA_2048", key_usage="SIGN_VERIFY")).key_id]
    except InvalidArgument:  # provider gcp offers AES_256 keys only: its RSA list is empty
        rsa = []
    only_rsa = await backend.list_keys(limit=1, key_spec="RSA_2048")
    assert ([meta.key_id for meta in only_rsa.keys], only_rsa.next_marker, only_rsa.total) == (rsa, None, len(rsa))
    first = await backend.list_keys(limit=1, key_spec="AES_256")
    rest = await backend.list_keys(limit=1, key_spec="AES_256", marker=first.next_marker)
    assert (first.total, rest.next_marker) == (2, None)
    assert [meta.key_id for meta in first.keys + rest.keys] == [meta.key_id for meta in symmetric]
    assert (await backend.list_keys()).total == 2 + len(rsa)
