"""Provider ``local`` (CLI, plugin, operator in-process) reaches the keystore without a wire's text checks:
text with a lone surrogate is InvalidArgument naming the field, never a UnicodeEncodeError from the database,
and nothing of a refused call is written (h5-findings #11)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from kubekms.backend import Backend, GrantTerms
from kubekms.errors import InvalidArgument, Reason
from kubekms.providers import BackendConfig, open_backend

LONE = "\udcff"  # what surrogateescape makes of a byte that is not UTF-8 (a CLI argument, a file name)


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[Backend]:
    opened = await open_backend(BackendConfig(provider="local", state_dir=tmp_path / "keystore", init=True))
    try:
        yield opened
    finally:
        await opened.close()


CREATIONS: list[tuple[str, dict[str, object], Reason]] = [
    ("description", {"description": f"a{LONE}"}, Reason.DESCRIPTION_INVALID),
    ("tag key", {"tags": {f"k{LONE}": "v"}}, Reason.TAG_KEY_INVALID),
    ("tag value", {"tags": {"k": f"v{LONE}"}}, Reason.TAG_VALUE_INVALID),
]


@pytest.mark.parametrize(("field", "kwargs", "reason"), CREATIONS, ids=[case[0] for case in CREATIONS])
async def test_create_key_refuses_lone_surrogates(
    backend: Backend, field: str, kwargs: dict[str, object], reason: Reason
) -> None:
    with pytest.raises(InvalidArgument) as refused:
        await backend.create_key("s6c-text", **kwargs)  # type: ignore[arg-type]
    assert refused.value.reason is reason
    assert LONE not in refused.value.message
    assert (await backend.list_keys()).total == 0


async def test_later_writes_refuse_lone_surrogates(backend: Backend) -> None:
    key = await backend.create_key("s6c-text", description="kept", tags={"kept": "yes"})
    writes: list[tuple[Callable[[], Awaitable[object]], Reason]] = [
        (lambda: backend.update_description(key.key_id, LONE), Reason.DESCRIPTION_INVALID),
        (lambda: backend.tag_key(key.key_id, {"fine": "v", LONE: "v"}), Reason.TAG_KEY_INVALID),
        (lambda: backend.tag_key(key.key_id, {"fine": LONE}), Reason.TAG_VALUE_INVALID),
        (lambda: backend.create_alias(key.key_id, f"s6c/{LONE}"), Reason.ALIAS_INVALID),
        (lambda: backend.create_grant(key.key_id, GrantTerms(grantee=f"g{LONE}", operations=("Decrypt",))),
         Reason.INVALID_ARGUMENT),
    ]  # fmt: skip
    for write, reason in writes:
        with pytest.raises(InvalidArgument) as refused:
            await write()
        assert refused.value.reason is reason
    described = await backend.describe_key(key.key_id)
    assert (described.description, dict(described.tags), described.aliases) == ("kept", {"kept": "yes"}, ("s6c-text",))
