"""v1.0 key tags: list, create, batch create/delete, delete, and list-keys-by-tags."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubekms.errors import InvalidArgument
from kubekms.server.v1_call import Call, JsonAnswer
from kubekms.server.v1_call import KeyScope as KeyScope  # re-exported: the pipeline and the console read it here
from kubekms.wire.v1 import answers as v1_answers
from kubekms.wire.v1 import fields as v1_fields
from kubekms.wire.v1 import values as v1_values

# --------------------------------------------------------------------- tags


async def list_key_tags(call: Call) -> JsonAnswer:
    return v1_answers.tags_answer(await call.backend.list_tags(call.key_ref()))


async def create_key_tag(call: Call) -> JsonAnswer:
    tags = v1_fields.tags_from_wire([call.fields.object("tag", code="KMS.0414")])
    await call.authorize_tag_change(tags)
    await call.backend.tag_key(call.key_ref(), tags)
    return {}


async def batch_key_tags(call: Call) -> JsonAnswer:
    action = call.fields.text("action", required=True, code="KMS.0404")
    tags = v1_fields.tags_from_wire(call.fields.objects("tags", code="KMS.0412"))
    if not tags:
        raise InvalidArgument("tag list cannot be empty", code="KMS.0401")
    if action not in ("create", "delete"):
        raise InvalidArgument("action must be 'create' or 'delete'", code="KMS.0404")
    await call.authorize_tag_change(tags)
    if action == "create":
        await call.backend.tag_key(call.key_ref(), tags)
    else:
        await call.backend.untag_key(call.key_ref(), list(tags))
    return {}


async def delete_key_tag(call: Call) -> JsonAnswer:
    await call.authorize_tag_change([call.path_tag_key])
    await call.backend.untag_key(call.key_ref(), [call.path_tag_key])
    return {}


async def list_keys_by_tags(call: Call) -> JsonAnswer:
    fields = call.fields
    action = fields.text("action", default="filter", code="KMS.0404")
    if action not in ("filter", "count"):
        raise InvalidArgument("action must be 'filter' or 'count'", code="KMS.0404")
    wanted = _tag_filter(fields.objects("tags", code="KMS.0412"))
    names = _name_filter(fields.raw("matches"))
    first_key, first_values = next(iter(wanted.items()))
    found = {}
    for value in first_values:
        for meta in await call.backend.find_keys_by_tag(first_key, value):
            found[meta.key_id] = meta
    matches = sorted(
        (
            meta
            for meta in found.values()
            if all(meta.tags.get(k) in values for k, values in wanted.items())
            and all(name in (meta.alias or "") for name in names)
        ),
        key=lambda meta: meta.created_at,
    )
    if action == "count":
        return {"total_count": len(matches)}
    offset = fields.integer("offset", code="KMS.0417", default=0, bounds=(0, v1_values.INT_BOUNDS[1]))
    limit = fields.integer("limit", code="KMS.1601", default=10, bounds=(1, 1000))
    assert offset is not None and limit is not None
    return {
        "resources": [
            {
                "resource_id": meta.key_id,
                "resource_detail": v1_answers.key_details(meta, project_id=call.project_id),
                "resource_name": meta.alias,
                "tags": v1_answers.tag_items(meta.tags),
            }
            for meta in matches[offset : offset + limit]
        ],
        "total_count": len(matches),
    }


MATCH_KEYS = ("resource_name",)  # Huawei's search fields of a key: its alias, matched in part
MAX_MATCH_VALUE_CHARS = 255


def _name_filter(items: object) -> list[str]:
    """``matches``: Huawei's search on ``resource_name`` (the alias, matched in part). Refused, never ignored,
    when it cannot be applied: ignoring it answered every key of the tags."""
    if items in (None, []):
        return []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise InvalidArgument("matches must be a list of objects", code="KMS.0415")
    names = []
    for item in items:
        if item.get("key") not in MATCH_KEYS:
            raise InvalidArgument(f"every match needs a key of {', '.join(MATCH_KEYS)}", code="KMS.0403")
        value = item.get("value")
        if not isinstance(value, str) or not 1 <= len(value) <= MAX_MATCH_VALUE_CHARS:
            raise InvalidArgument(f"a match value is a string of 1 to {MAX_MATCH_VALUE_CHARS} characters",
                                  code="KMS.0402")  # fmt: skip
        names.append(value)
    return names


def _tag_filter(items: list[Mapping[str, Any]]) -> dict[str, frozenset[str]]:
    wanted: dict[str, frozenset[str]] = {}
    for item in items:
        tag_key, values = item.get("key"), item.get("values")
        if not isinstance(tag_key, str) or not tag_key:
            raise InvalidArgument("every tag needs a non-empty string key", code="KMS.0406")
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise InvalidArgument(f"tag {tag_key!r}: values must be a non-empty list of strings", code="KMS.0405")
        wanted[tag_key] = frozenset(values)
    if not wanted:
        raise InvalidArgument("tag list cannot be empty", code="KMS.0401")
    return wanted
