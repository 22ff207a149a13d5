"""Instance count, quotas, the CMK limit and the health check."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from kubekms.backend import Backend
from kubekms.errors import LimitExceeded, NotFound, Reason


async def test_instance_count_and_quota_follow_the_keys(backend: Backend, alias: Callable[[str], str]) -> None:
    assert await backend.instance_count() == 0
    for _ in range(3):
        await backend.create_key(alias("count"))
    assert await backend.instance_count() == 3
    (cmk,) = [quota for quota in await backend.quotas() if quota.resource == "CMK"]
    assert (cmk.used, cmk.limit) == (3, 1000)


async def test_cmk_limit(backend_factory: Callable[..., Awaitable[Backend]], alias: Callable[[str], str]) -> None:
    backend = await backend_factory(cmk_limit=2)
    await backend.create_key(alias("one"))
    await backend.create_key(alias("two"))
    refused_alias = alias("three")
    with pytest.raises(LimitExceeded) as refused:
        await backend.create_key(refused_alias)
    assert refused.value.reason is Reason.LIMIT_EXCEEDED
    assert await backend.instance_count() == 2
    (cmk,) = await backend.quotas()
    assert (cmk.used, cmk.limit) == (2, 2)
    with pytest.raises(NotFound):
        await backend.describe_key(refused_alias)


async def test_health(backend: Backend) -> None:
    await backend.check_health()
