"""Huawei's list_kms_tags (``GET .../kms/tags``): every tag key of the project's keys with the values it holds."""

from __future__ import annotations

from kubekms.keystore import rules
from kubekms.server.v1_call import Call, JsonAnswer


async def list_kms_tags(call: Call) -> JsonAnswer:
    values: dict[str, set[str]] = {}
    marker: str | None = None
    while True:
        page = await call.backend.list_keys(limit=rules.LIST_LIMIT[1], marker=marker)
        for meta in page.keys:
            for tag_key, tag_value in meta.tags.items():
                values.setdefault(tag_key, set()).add(tag_value)
        if page.next_marker is None:
            break
        marker = page.next_marker
    return {"tags": [{"key": tag_key, "values": sorted(values[tag_key])} for tag_key in sorted(values)]}
