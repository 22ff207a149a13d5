"""v1.0 aliases: create, delete, list (filtered to what the caller may see), alias/associate and update-key-alias."""

from __future__ import annotations

from collections.abc import Mapping

from kubekms.backend import KeyMetadata
from kubekms.errors import AccessDenied, InvalidArgument, NotFound
from kubekms.keystore import rules
from kubekms.server.v1_call import Call, JsonAnswer, all_keys, page_request
from kubekms.server.v1_call import KeyScope as KeyScope  # re-exported: the pipeline and the console read it here
from kubekms.wire.aws_rules import key_type
from kubekms.wire.v1 import answers as v1_answers
from kubekms.wire.v1 import fields as v1_fields
from kubekms.wire.v1 import values as v1_values
from kubekms.wire.v1.fields import RequestFields

LIST_ALIASES = "list-aliases"
UPDATE_ALIAS = "update-alias"  # alias/associate: the AWS wire's permission for the same move
UPDATE_KEY_ALIAS = "update-key-alias"


# --------------------------------------------------------------------- aliases


async def create_alias(call: Call) -> JsonAnswer:
    alias = rules.check_not_reserved_alias(call.fields.text("alias", required=True, code="KMS.1101"))
    key_ref = call.key_ref()
    await call.backend.create_alias(key_ref, alias)
    key_id = (await call.backend.describe_key(key_ref)).key_id
    return v1_answers.alias_entity(key_id, alias, call.project_id)


def moved_alias_ref(path_key_id: str, query: Mapping[str, str], fields: RequestFields) -> str:
    """alias/associate names the key its alias points at now by that ``alias``."""
    return v1_fields.key_ref_text(fields.raw("alias"), "alias")


async def associate_alias(call: Call) -> JsonAnswer:
    """Huawei's alias/associate moves ``alias`` to ``target_key_id``: AWS's UpdateAlias, with its permission
    (update-alias) on both keys — the pipeline authorised the alias's current key, the target is authorised here —
    and its rule: the alias stays with keys of one type and usage, as on the AWS wire (one keystore)."""
    alias = rules.check_not_reserved_alias(call.key_ref())
    target = call.fields.key_id("target_key_id")
    if call.caller is None:
        raise AccessDenied("this operation needs a signed-in principal")
    await call.caller.authorize_key(UPDATE_ALIAS, call.backend, target, account=call.project_id)
    current, new = await call.backend.describe_key(alias), await call.backend.describe_key(target)
    if (key_type(current.key_spec), current.key_usage) != (key_type(new.key_spec), new.key_usage):
        raise InvalidArgument(f"alias {alias!r} names a {key_type(current.key_spec)} key for {current.key_usage}; "
                              f"it can move only to a key of that type and usage, not to a "
                              f"{key_type(new.key_spec)} key for {new.key_usage}", code="KMS.1101")  # fmt: skip
    await call.backend.update_alias(alias, new.key_id)
    return v1_answers.alias_entity(new.key_id, alias, call.project_id)


async def update_key_alias(call: Call) -> JsonAnswer:
    """Huawei's update-key-alias: the key's key_alias renamed (the old name stops naming it), answered as Huawei's
    ``{"key_info": {"key_id", "key_alias"}}``. Aliases under a reserved prefix are refused, as create-key's."""
    alias = rules.check_not_reserved_alias(call.fields.identifier("key_alias", code="KMS.1101"))
    meta = await call.backend.update_key_alias(call.key_ref(), alias)
    return {"key_info": {"key_id": meta.key_id, "key_alias": meta.alias}}


async def delete_alias(call: Call) -> JsonAnswer:
    """Every alias listed is checked before any is deleted: a refused request deletes none (each named once)."""
    aliases = list(dict.fromkeys(_alias_list(call.fields)))
    key = await call.backend.describe_key(call.key_ref())
    for alias in aliases:
        if alias == key.alias:
            raise InvalidArgument(f"{alias!r} is the key's primary alias (key_alias) and cannot be deleted")
        if alias not in key.aliases:
            raise NotFound(f"key {key.key_id} has no alias {alias!r}")
    for alias in aliases:
        await call.backend.delete_alias(key.key_id, alias)
    return {}


def _alias_list(fields: RequestFields) -> list[str]:
    return fields.strings("aliases", code="KMS.1101", max_chars=v1_values.MAX_KEY_ID_LENGTH)


async def list_aliases(call: Call) -> JsonAnswer:
    """One key's aliases, or without ``key_id`` (as Huawei) every alias of the project, key by key: those of the
    keys the caller may list aliases of. Markers count what the caller sees (the others are left out first)."""
    limit, marker_value = page_request(RequestFields(call.query))  # a GET: key_id, limit and marker in the query
    start = marker_value or 0
    if call.query.get("key_id"):
        keys = [await call.backend.describe_key(call.key_ref())]
    else:
        keys = [meta for meta in await all_keys(call.backend) if await _may_list_aliases(call, meta)]
    entries = [(meta.key_id, alias) for meta in keys for alias in meta.aliases]
    next_marker = str(start + limit) if start + limit < len(entries) else ""
    return v1_answers.aliases_answer(entries[start : start + limit], call.project_id, next_marker)


async def _may_list_aliases(call: Call, meta: KeyMetadata) -> bool:
    """As list-aliases with this key's ``key_id`` is authorised (key list, key policy, grants)."""
    caller = call.caller
    if caller is None or caller.all_keys:
        return True
    if not meta.aliases:
        return False  # nothing of it would be listed: no need to authorise
    try:
        await caller.authorize_key(LIST_ALIASES, call.backend, meta.key_id, account=call.project_id)
    except AccessDenied:
        return False
    return True
