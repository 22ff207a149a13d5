"""Huawei's list_kms_tags (``GET .../kms/tags``): every tag key of the project's keys with the values it holds."""

from __future__ import annotations

from kubekms.server.v1_call import Call, JsonAnswer, all_keys


async def list_kms_tags(call: Call) -> JsonAnswer:
    values: dict[str, set[str]] = {}
    for meta in await all_keys(call.backend):
        for tag_key, tag_value in meta.tags.items():
            values.setdefault(tag_key, set()).add(tag_value)
    return {"tags": [{"key": tag_key, "values": sorted(values[tag_key])} for tag_key in sorted(values)]}
