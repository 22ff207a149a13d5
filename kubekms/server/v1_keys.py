"""v1.0 key lifecycle, rotation and account operations: create, list, describe, states, deletion, rotation
settings, instances and quotas."""

from __future__ import annotations

from kubekms.backend import ORIGIN_EXTERNAL, ORIGIN_KMS
from kubekms.errors import InvalidArgument
from kubekms.keystore import rules
from kubekms.server.v1_call import Call, JsonAnswer, page_request
from kubekms.server.v1_call import KeyScope as KeyScope  # re-exported: the pipeline and the console read it here
from kubekms.wire.v1 import answers as v1_answers
from kubekms.wire.v1 import fields as v1_fields
from kubekms.wire.v1 import values as v1_values
from kubekms.wire.v1.fields import RequestFields

CREATION_TAGS_FIELD = "tags"
TAGGING_PERMISSION = "batch-key-tags"  # what create-key with tags needs beside create-key, as AWS asks TagResource


# --------------------------------------------------------------------- lifecycle


async def create_key(call: Call) -> JsonAnswer:
    fields = call.fields
    origin = fields.text("origin", default=ORIGIN_KMS, max_chars=16) or ORIGIN_KMS
    if origin not in (ORIGIN_KMS, ORIGIN_EXTERNAL):
        raise InvalidArgument("origin must be 'kms' or 'external' (key material imported later)", code="KMS.0308")
    key_spec, key_usage = v1_fields.key_type_from_request(fields)
    meta = await call.backend.create_key(
        rules.check_not_reserved_alias(fields.identifier("key_alias", code="KMS.1101")),  # "": no alias
        description=fields.text("key_description", code="KMS.1103"),
        key_spec=key_spec,
        key_usage=key_usage,
        tags=creation_tags(fields),
        origin=origin,
    )
    # Huawei answers key_id and domain_id; the key's other details are a kubekms extension, so that a
    # kubekms client needs no describe-key after creating (the operator: one backend call per new KMSKey).
    return {"key_info": {**v1_answers.key_details(meta, project_id=call.project_id), "region_id": ""}}


def creation_tags(fields: RequestFields) -> dict[str, str]:
    """create-key's ``tags`` (a kubekms extension; Huawei's create-key has none): written with the key,
    in one transaction, so a caller that tags its keys to find them again never leaves an untagged one."""
    if not fields.has(CREATION_TAGS_FIELD):
        return {}
    return v1_fields.tags_from_wire(fields.objects(CREATION_TAGS_FIELD, code="KMS.0412"))


async def list_keys(call: Call) -> JsonAnswer:
    fields = call.fields
    limit, marker_value = page_request(fields)
    state = v1_fields.key_state_filter_from_request(fields)
    key_spec = v1_fields.key_spec_filter_from_request(fields)
    page = await call.backend.list_keys(
        limit=limit, marker=None if marker_value is None else str(marker_value), state=state, key_spec=key_spec
    )
    return {
        "keys": [meta.key_id for meta in page.keys],
        "key_details": [v1_answers.key_details(meta, project_id=call.project_id) for meta in page.keys],
        "next_marker": page.next_marker or "",
        "truncated": v1_values.to_bool_text(page.next_marker is not None),
        "total": page.total,
    }


async def describe_key(call: Call) -> JsonAnswer:
    return {
        "key_info": v1_answers.key_details(await call.backend.describe_key(call.key_ref()), project_id=call.project_id)
    }


async def enable_key(call: Call) -> JsonAnswer:
    return {"key_info": v1_answers.key_state_info(await call.backend.enable_key(call.key_ref()))}


async def disable_key(call: Call) -> JsonAnswer:
    return {"key_info": v1_answers.key_state_info(await call.backend.disable_key(call.key_ref()))}


async def schedule_key_deletion(call: Call) -> JsonAnswer:
    pending_days = call.fields.required_integer("pending_days", code="KMS.1401")
    return v1_answers.key_state_info(await call.backend.schedule_key_deletion(call.key_ref(), pending_days))


async def cancel_key_deletion(call: Call) -> JsonAnswer:
    return v1_answers.key_state_info(await call.backend.cancel_key_deletion(call.key_ref()))


async def update_key_description(call: Call) -> JsonAnswer:
    description = call.fields.text("key_description", required=True, code="KMS.1103")
    meta = await call.backend.update_description(call.key_ref(), description)
    return {"key_info": {"key_id": meta.key_id, "key_description": meta.description}}


# --------------------------------------------------------------------- rotation


ROTATION_INTERVAL_DAYS = (30, 365)  # Huawei's bounds on this wire (the keystore takes 1-3650 for the other wires)


async def enable_key_rotation(call: Call) -> JsonAnswer:
    interval = call.fields.integer("rotation_interval", code="KMS.3001", bounds=ROTATION_INTERVAL_DAYS)
    await call.backend.set_rotation(call.key_ref(), enabled=True, interval_days=interval)
    return {}


async def disable_key_rotation(call: Call) -> JsonAnswer:
    await call.backend.set_rotation(call.key_ref(), enabled=False)
    return {}


async def get_key_rotation_status(call: Call) -> JsonAnswer:
    return v1_answers.rotation_status(await call.backend.get_rotation_status(call.key_ref()))


async def update_key_rotation_interval(call: Call) -> JsonAnswer:
    interval = call.fields.required_integer("rotation_interval", code="KMS.3001", bounds=ROTATION_INTERVAL_DAYS)
    key_ref = call.key_ref()
    status = await call.backend.get_rotation_status(key_ref)
    await call.backend.set_rotation(key_ref, enabled=status.enabled, interval_days=interval)
    return {}


async def rotate_on_demand(call: Call) -> JsonAnswer:
    return {"key_id": (await call.backend.rotate_key(call.key_ref())).key_id}


# --------------------------------------------------------------------- account


async def user_instances(call: Call) -> JsonAnswer:
    return {"instance_num": await call.backend.instance_count()}


async def user_quotas(call: Call) -> JsonAnswer:
    return v1_answers.quotas_answer(await call.backend.quotas())
