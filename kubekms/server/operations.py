"""Every KMS v1.0 wire operation the server serves: its route, how it names its key, its handler.

Handlers translate wire fields (through :mod:`kubekms.wire.v1.fields`) into one backend call and
the backend's answer back into the wire's JSON. Validation of values (alias syntax, ranges,
states) is the keystore's; the wire's field parsers check types, units and the wire's own formats.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubekms import ciphertext as ciphertext_format
from kubekms import policies
from kubekms.backend import ORIGIN_EXTERNAL, ORIGIN_KMS, Backend, Grant, GrantTerms, KeyMetadata
from kubekms.errors import AccessDenied, InvalidArgument, InvalidCiphertext, NotFound, Reason
from kubekms.keystore import rules
from kubekms.server.http_messages import unquote_segment
from kubekms.server.principals import PrincipalGrant
from kubekms.server.v1_call import Call, Handler, JsonAnswer, Operation
from kubekms.server.v1_call import KeyScope as KeyScope  # re-exported: the pipeline and the console read it here
from kubekms.server.v1_key_pairs import create_ec_datakey_pair, create_rsa_datakey_pair
from kubekms.server.v1_not_offered import refuse_if_known
from kubekms.server.v1_project_tags import list_kms_tags
from kubekms.server.v1_re_encrypt import re_encrypt, source_key_ref
from kubekms.wire.aws_rules import key_type
from kubekms.wire.v1 import answers as v1_answers
from kubekms.wire.v1 import fields as v1_fields
from kubekms.wire.v1 import grants as v1_grants
from kubekms.wire.v1 import values as v1_values
from kubekms.wire.v1.fields import RequestFields

CREATION_TAGS_FIELD = "tags"
TAGGING_PERMISSION = "batch-key-tags"  # what create-key with tags needs beside create-key, as AWS asks TagResource
LIST_ALIASES = "list-aliases"
UPDATE_ALIAS = "update-alias"  # alias/associate: the AWS wire's permission for the same move
LIST_KMS_TAGS = "list-kms-tags"  # GET .../kms/tags: the project's tag keys and values


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


def page_request(fields: RequestFields) -> tuple[int, int | None]:
    """``limit`` and ``marker`` (an offset) of a v1 list call: list-keys and list-aliases share the rules."""
    limit = fields.integer("limit", code="KMS.1601", default=100)
    assert limit is not None
    rules.check_range("limit", limit, rules.LIST_LIMIT, reason=Reason.LIST_LIMIT_INVALID)
    return limit, fields.marker("marker", code="KMS.1602")


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


# --------------------------------------------------------------------- randomness and data keys


async def gen_random(call: Call) -> JsonAnswer:
    return v1_answers.random_answer(
        await call.backend.generate_random(v1_fields.random_length_from_request(call.fields))
    )


async def create_datakey(call: Call) -> JsonAnswer:
    length = v1_fields.data_key_length_from_request(call.fields)
    data_key = await call.backend.create_data_key(call.key_ref(), length=length, aad=call.fields.aad())
    return v1_answers.data_key_answer(data_key, with_plaintext=True)


async def create_datakey_without_plaintext(call: Call) -> JsonAnswer:
    length = v1_fields.data_key_length_from_request(call.fields)
    data_key = await call.backend.create_data_key_without_plaintext(
        call.key_ref(), length=length, aad=call.fields.aad()
    )
    return v1_answers.data_key_answer(data_key, with_plaintext=False)


async def encrypt_datakey(call: Call) -> JsonAnswer:
    plaintext = v1_fields.data_key_plaintext_from_request(call.fields)
    data_key = await call.backend.encrypt_data_key(call.key_ref(), plaintext, aad=call.fields.aad())
    return v1_answers.encrypted_data_key_answer(data_key, len(plaintext))


async def decrypt_datakey(call: Call) -> JsonAnswer:
    ciphertext = call.fields.hex_bytes("cipher_text", code="KMS.2201")
    expected_length = v1_fields.cipher_length_from_request(call.fields)
    plaintext = await call.backend.decrypt_data_key(call.key_ref(), ciphertext, aad=call.fields.aad(opening=True))
    if expected_length is not None and expected_length != len(plaintext):
        raise InvalidCiphertext("the length of cipher_text does not match datakey_cipher_length", code="KMS.2204")
    return v1_answers.decrypted_data_key_answer(plaintext)


# --------------------------------------------------------------------- data (Huawei's encrypt-data, decrypt-data)

SYMMETRIC_DEFAULT = "SYMMETRIC_DEFAULT"
ENCRYPTION_ALGORITHMS = (SYMMETRIC_DEFAULT, "RSAES_OAEP_SHA_256")  # Huawei's SM2_ENCRYPT: no SM2 keys here
DATA_CIPHERTEXT_BYTES = 6144


def _encryption_algorithm(fields: RequestFields) -> str:
    algorithm = fields.text("encryption_algorithm", default=SYMMETRIC_DEFAULT, max_chars=32) or SYMMETRIC_DEFAULT
    if algorithm not in ENCRYPTION_ALGORITHMS:
        raise InvalidArgument(f"encryption_algorithm must be one of {', '.join(ENCRYPTION_ALGORITHMS)}")
    return algorithm


def _data_ciphertext(fields: RequestFields) -> bytes:
    return fields.base64_bytes("cipher_text", max_bytes=DATA_CIPHERTEXT_BYTES, code="KMS.2201")


def data_key_ref(path_key_id: str, query: Mapping[str, str], fields: RequestFields) -> str:
    """decrypt-data's ``key_id`` is optional, as on Huawei: our symmetric ciphertext names its key (which the
    caller must then be allowed to use, as if it had named it)."""
    if fields.has("key_id") or _encryption_algorithm(fields) != SYMMETRIC_DEFAULT:
        return fields.key_id()
    return ciphertext_format.parse(_data_ciphertext(fields)).key_id


async def encrypt_data(call: Call) -> JsonAnswer:
    """``plain_text`` (text, 1-4096 bytes as UTF-8) sealed as the AWS wire's Encrypt seals; ``cipher_text`` base64."""
    algorithm = _encryption_algorithm(call.fields)
    plaintext = call.fields.text("plain_text", required=True, code="KMS.2101",
                                 max_chars=rules.ENCRYPT_PLAINTEXT_BYTES[1]).encode()  # fmt: skip
    if algorithm != SYMMETRIC_DEFAULT:
        made = await call.backend.encrypt_asymmetric(call.key_ref(), plaintext, algorithm=algorithm)
        return v1_answers.encrypted_data_answer(made.key_id, made.data)
    data_key = await call.backend.encrypt_data_key(call.key_ref(), plaintext, aad=call.fields.aad())
    return v1_answers.encrypted_data_answer(data_key.key_id, data_key.ciphertext)


async def decrypt_data(call: Call) -> JsonAnswer:
    algorithm = _encryption_algorithm(call.fields)
    blob = _data_ciphertext(call.fields)
    if algorithm != SYMMETRIC_DEFAULT:
        opened = await call.backend.decrypt_asymmetric(call.key_ref(), blob, algorithm=algorithm)
        return v1_answers.decrypted_data_answer(opened.key_id, opened.data)
    plaintext = await call.backend.decrypt_data_key(call.key_ref(), blob, aad=call.fields.aad(opening=True))
    return v1_answers.decrypted_data_answer(ciphertext_format.parse(blob).key_id, plaintext)


# --------------------------------------------------------------------- asymmetric and HMAC keys (Backend's crypto)


async def get_publickey(call: Call) -> JsonAnswer:
    key_id = (await call.backend.describe_key(call.key_ref())).key_id
    return v1_answers.public_key_answer(key_id, await call.backend.get_public_key(key_id))


async def sign(call: Call) -> JsonAnswer:
    fields = call.fields
    message = fields.base64_bytes("message", max_bytes=v1_values.SIGN_MESSAGE_BYTES)
    algorithm = fields.text("signing_algorithm", required=True, max_chars=64)
    digest = v1_fields.message_is_digest(fields)
    return v1_answers.signature_answer(
        await call.backend.sign(call.key_ref(), message, algorithm=algorithm, digest=digest)
    )


async def verify(call: Call) -> JsonAnswer:
    fields = call.fields
    message = fields.base64_bytes("message", max_bytes=v1_values.SIGN_MESSAGE_BYTES)
    signature = fields.base64_bytes("signature", max_bytes=v1_values.SIGNATURE_BYTES)
    algorithm = fields.text("signing_algorithm", required=True, max_chars=64)
    digest = v1_fields.message_is_digest(fields)
    key_id = (await call.backend.describe_key(call.key_ref())).key_id
    valid = await call.backend.verify(key_id, message, signature, algorithm=algorithm, digest=digest)
    return v1_answers.signature_valid_answer(key_id, valid)


async def generate_mac(call: Call) -> JsonAnswer:
    message = call.fields.base64_bytes("message", max_bytes=v1_values.SIGN_MESSAGE_BYTES)
    algorithm = call.fields.text("mac_algorithm", required=True, max_chars=64)
    return v1_answers.mac_answer(
        await call.backend.generate_mac(call.key_ref(), message, algorithm=algorithm), algorithm
    )


async def verify_mac(call: Call) -> JsonAnswer:
    message = call.fields.base64_bytes("message", max_bytes=v1_values.SIGN_MESSAGE_BYTES)
    mac = call.fields.base64_bytes("mac", max_bytes=v1_values.SIGNATURE_BYTES)
    algorithm = call.fields.text("mac_algorithm", required=True, max_chars=64)
    key_id = (await call.backend.describe_key(call.key_ref())).key_id
    valid = await call.backend.verify_mac(key_id, message, mac, algorithm=algorithm)
    return v1_answers.mac_valid_answer(key_id, algorithm, valid)


# --------------------------------------------------------------------- account


async def user_instances(call: Call) -> JsonAnswer:
    return {"instance_num": await call.backend.instance_count()}


async def user_quotas(call: Call) -> JsonAnswer:
    return v1_answers.quotas_answer(await call.backend.quotas())


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


async def delete_alias(call: Call) -> JsonAnswer:
    aliases = _alias_list(call.fields)
    key_ref = call.key_ref()
    for alias in aliases:
        await call.backend.delete_alias(key_ref, alias)
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
        keys = [meta for meta in await _all_keys(call.backend) if await _may_list_aliases(call, meta)]
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


async def _all_keys(backend: Backend) -> list[KeyMetadata]:
    """Every key of the project, whatever its state and spec."""
    keys: list[KeyMetadata] = []
    marker: str | None = None
    while True:
        page = await backend.list_keys(limit=rules.LIST_LIMIT[1], marker=marker)
        keys.extend(page.keys)
        if page.next_marker is None:
            return keys
        marker = page.next_marker


# --------------------------------------------------------------------- imported key material (origin external)

IMPORT_WRAPPING = ("RSAES_OAEP_SHA_256", "RSA_2048")  # Huawei's (its SM2_ENCRYPT: no SM2 here); 256-byte wraps
IMPORT_BLOB_BYTES = 6144
MAX_EPOCH_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z


async def get_parameters_for_import(call: Call) -> JsonAnswer:
    algorithm = call.fields.text("wrapping_algorithm", required=True, max_chars=32)
    if algorithm != IMPORT_WRAPPING[0]:
        raise InvalidArgument(f"wrapping_algorithm must be {IMPORT_WRAPPING[0]}", code="KMS.0308")
    parameters = await call.backend.get_parameters_for_import(
        call.key_ref(), wrapping_algorithm=algorithm, wrapping_key_spec=IMPORT_WRAPPING[1]
    )
    return v1_answers.import_parameters_answer(parameters)


async def import_key_material(call: Call) -> JsonAnswer:
    """``expiration_time`` (epoch seconds, optional): when the material expires. Symmetric material only."""
    fields = call.fields
    if fields.has("encrypted_privatekey"):
        raise InvalidArgument("importing an asymmetric key's private key is not offered", code="KMS.0308")
    expires = fields.integer("expiration_time", code="KMS.0308", bounds=(1, MAX_EPOCH_SECONDS))
    await call.backend.import_key_material(
        call.key_ref(),
        fields.base64_bytes("import_token", max_bytes=IMPORT_BLOB_BYTES),
        fields.base64_bytes("encrypted_key_material", max_bytes=IMPORT_BLOB_BYTES),
        valid_to=None if expires is None else datetime.fromtimestamp(expires, UTC),
    )
    return {}


async def delete_imported_key_material(call: Call) -> JsonAnswer:
    await call.backend.delete_imported_key_material(call.key_ref())
    return {}


# --------------------------------------------------------------------- grants (the keystore's, as the AWS wire's)


async def create_grant(call: Call) -> JsonAnswer:
    """Huawei's create-grant: ``grantee_principal`` and ``retiring_principal`` name principals of the server;
    a caller allowed only through a grant makes grants within it (as AWS's CreateGrant)."""
    fields, caller = call.fields, _signed_in(call)
    key = await call.backend.describe_key(call.key_ref())
    kind = fields.text("grantee_principal_type", default=v1_grants.USER_TYPE, max_chars=16) or v1_grants.USER_TYPE
    if kind != v1_grants.USER_TYPE:
        raise InvalidArgument("grantee_principal_type must be 'user': a grant names one principal", code="KMS.0308")
    grantee = v1_grants.principal_from_request(fields.identifier("grantee_principal", code="KMS.0308"),
                                               "grantee_principal")  # fmt: skip
    operations = v1_grants.operations_from_request(fields.strings("operations", code="KMS.0308", max_chars=64))
    unfit = sorted(set(operations) - policies.grant_operations_for(key.key_spec, key.key_usage))
    if unfit:
        raise InvalidArgument(f"a grant on a {key.key_spec} key for {key.key_usage} cannot allow "
                              f"{', '.join(v1_grants.wire_operations(unfit))}", code="KMS.0308")  # fmt: skip
    name = fields.text("name", max_chars=255, code="KMS.0308")
    if name and not v1_grants.GRANT_NAME.fullmatch(name):
        raise InvalidArgument("name must match ^[a-zA-Z0-9:/_-]{1,255}$", code="KMS.0308")
    retiring = fields.text("retiring_principal", max_chars=64, code="KMS.0308")
    project = call.project_id
    terms = GrantTerms(
        grantee=v1_grants.principal_arn(project, grantee),
        operations=operations,
        retiring=v1_grants.principal_arn(project, v1_grants.principal_from_request(retiring, "retiring_principal"))
        if retiring
        else "",
        name=name,
        issuing_account=v1_grants.account_arn(project),
    )
    await caller.authorize_action(policies.policy_action("create-grant"), call.backend, key.key_id, account=project,
                                  label="create-grant",
                                  grant_filter=lambda parent: policies.grant_may_create(parent, terms))  # fmt: skip
    return {"grant_id": (await call.backend.create_grant(key.key_id, terms)).grant_id}


async def list_grants(call: Call) -> JsonAnswer:
    limit, marker = page_request(call.fields)
    key_id = (await call.backend.describe_key(call.key_ref())).key_id
    return _grant_page(await call.backend.list_grants(key_id), limit, marker or 0, call.project_id)


async def list_retirable_grants(call: Call) -> JsonAnswer:
    """The grants the caller may retire (it is their retiring principal), on every key of the project."""
    limit, marker = page_request(call.fields)
    caller = v1_grants.principal_arn(call.project_id, _signed_in(call).name)
    return _grant_page(await call.backend.list_grants(retiring=caller), limit, marker or 0, call.project_id)


def _grant_page(grants: list[Grant], limit: int, start: int, project_id: str) -> JsonAnswer:
    more = start + limit < len(grants)
    return {
        "grants": [v1_grants.grant_entry(grant, project_id) for grant in grants[start : start + limit]],
        "next_marker": str(start + limit) if more else "",
        "truncated": v1_values.to_bool_text(more),
        "total": len(grants),
    }


async def revoke_grant(call: Call) -> JsonAnswer:
    await call.backend.delete_grant(call.key_ref(), call.fields.identifier("grant_id", code="KMS.0308"))
    return {}


async def retire_grant(call: Call) -> JsonAnswer:
    """By its retiring principal, a grantee the grant allows retire-grant, or whoever may retire the key's grants
    (authorised here: the first two act on a key no key list or policy need name them for)."""
    caller = _signed_in(call)
    key_ref, grant_id = call.key_ref(), call.fields.identifier("grant_id", code="KMS.0308")
    action = policies.policy_action("retire-grant")
    try:
        grant = await call.backend.find_grant(key_id=key_ref, grant_id=grant_id)
    except NotFound:  # no key, or no such grant: said only to who may retire the key's grants
        await caller.authorize_action(action, call.backend, key_ref, account=call.project_id, label="retire-grant")
        raise
    me, terms = v1_grants.principal_arn(call.project_id, caller.name), grant.terms
    if me != terms.retiring and not (me == terms.grantee and "RetireGrant" in terms.operations):
        await caller.authorize_action(action, call.backend, grant.key_id, account=call.project_id,
                                      label="retire-grant")  # fmt: skip
    await call.backend.delete_grant(grant.key_id, grant.grant_id)
    return {}


def _signed_in(call: Call) -> PrincipalGrant:
    if call.caller is None:
        raise AccessDenied("this operation needs a signed-in principal")
    return call.caller


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
    first_key, first_values = next(iter(wanted.items()))
    found = {}
    for value in first_values:
        for meta in await call.backend.find_keys_by_tag(first_key, value):
            found[meta.key_id] = meta
    matches = sorted(
        (meta for meta in found.values() if all(meta.tags.get(k) in values for k, values in wanted.items())),
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


# --------------------------------------------------------------------- routing

_KEY_OPERATIONS: dict[str, Handler] = {
    "describe-key": describe_key,
    "enable-key": enable_key,
    "disable-key": disable_key,
    "schedule-key-deletion": schedule_key_deletion,
    "cancel-key-deletion": cancel_key_deletion,
    "update-key-description": update_key_description,
    "enable-key-rotation": enable_key_rotation,
    "disable-key-rotation": disable_key_rotation,
    "get-key-rotation-status": get_key_rotation_status,
    "update-key-rotation-interval": update_key_rotation_interval,
    "rotate-on-demand": rotate_on_demand,
    "create-datakey": create_datakey,
    "create-datakey-without-plaintext": create_datakey_without_plaintext,
    "encrypt-datakey": encrypt_datakey,
    "decrypt-datakey": decrypt_datakey,
    "create-rsa-datakey-pair": create_rsa_datakey_pair,
    "create-ec-datakey-pair": create_ec_datakey_pair,
    "get-publickey": get_publickey,
    "sign": sign,
    "verify": verify,
    "generate-mac": generate_mac,
    "verify-mac": verify_mac,
}

OPERATIONS: dict[str, Operation] = {
    **{name: Operation(name, "POST", KeyScope.KEY, handler) for name, handler in _KEY_OPERATIONS.items()},
    "create-key": Operation("create-key", "POST", KeyScope.ACCOUNT, create_key),
    "list-keys": Operation("list-keys", "POST", KeyScope.ACCOUNT, list_keys),
    "gen-random": Operation("gen-random", "POST", KeyScope.NONE, gen_random),
    "user-instances": Operation("user-instances", "GET", KeyScope.ACCOUNT, user_instances),
    "encrypt-data": Operation("encrypt-data", "POST", KeyScope.KEY, encrypt_data),
    "decrypt-data": Operation("decrypt-data", "POST", KeyScope.KEY, decrypt_data, key_ref=data_key_ref),
    "re-encrypt": Operation("re-encrypt", "POST", KeyScope.KEY, re_encrypt, key_ref=source_key_ref),
    "user-quotas": Operation("user-quotas", "GET", KeyScope.ACCOUNT, user_quotas),
    "create-alias": Operation("create-alias", "POST", KeyScope.KEY, create_alias),
    "delete-alias": Operation("delete-alias", "DELETE", KeyScope.KEY, delete_alias),
    UPDATE_ALIAS: Operation(UPDATE_ALIAS, "POST", KeyScope.KEY, associate_alias, key_ref=moved_alias_ref),
    LIST_ALIASES: Operation(LIST_ALIASES, "GET", KeyScope.KEY, list_aliases, key_optional=True),
    "list-key-tags": Operation("list-key-tags", "GET", KeyScope.KEY, list_key_tags),
    "create-key-tag": Operation("create-key-tag", "POST", KeyScope.KEY, create_key_tag),
    "batch-key-tags": Operation("batch-key-tags", "POST", KeyScope.KEY, batch_key_tags),
    "delete-key-tag": Operation("delete-key-tag", "DELETE", KeyScope.KEY, delete_key_tag),
    "list-keys-by-tags": Operation("list-keys-by-tags", "POST", KeyScope.ACCOUNT, list_keys_by_tags),
    LIST_KMS_TAGS: Operation(LIST_KMS_TAGS, "GET", KeyScope.ACCOUNT, list_kms_tags),
    "get-parameters-for-import": Operation(
        "get-parameters-for-import", "POST", KeyScope.KEY, get_parameters_for_import
    ),
    "import-key-material": Operation("import-key-material", "POST", KeyScope.KEY, import_key_material),
    "delete-imported-key-material": Operation(
        "delete-imported-key-material", "POST", KeyScope.KEY, delete_imported_key_material
    ),
    "create-grant": Operation("create-grant", "POST", KeyScope.KEY, create_grant),
    "list-grants": Operation("list-grants", "POST", KeyScope.KEY, list_grants),
    "revoke-grant": Operation("revoke-grant", "POST", KeyScope.KEY, revoke_grant),
    # authorised by their handlers: a retiring principal (or grantee) acts on grants no key list or policy names
    "list-retirable-grants": Operation("list-retirable-grants", "POST", KeyScope.NONE, list_retirable_grants),
    "retire-grant": Operation("retire-grant", "POST", KeyScope.NONE, retire_grant),
}

# path after /kms/ -> method -> operation, for the fixed paths (key tags are matched by pattern)
_PATTERN_ROUTED = {"create-alias", "delete-alias", "list-aliases", UPDATE_ALIAS, "list-key-tags", "create-key-tag",
                   "batch-key-tags", "delete-key-tag", "list-keys-by-tags", LIST_KMS_TAGS}  # fmt: skip
_FIXED_ROUTES: dict[str, dict[str, Operation]] = {
    operation.name: {operation.method: operation}
    for operation in OPERATIONS.values()
    if operation.name not in _PATTERN_ROUTED
}
_FIXED_ROUTES["aliases"] = {
    "POST": OPERATIONS["create-alias"],
    "DELETE": OPERATIONS["delete-alias"],
    "GET": OPERATIONS["list-aliases"],
}
_FIXED_ROUTES["alias/associate"] = {"POST": OPERATIONS[UPDATE_ALIAS]}
_FIXED_ROUTES["resource_instances/action"] = {"POST": OPERATIONS["list-keys-by-tags"]}
_FIXED_ROUTES["tags"] = {"GET": OPERATIONS[LIST_KMS_TAGS]}


@dataclass(frozen=True)
class Route:
    operation: Operation
    path_key_id: str = ""
    path_tag_key: str = ""


def resolve(method: str, tail: str) -> Route:
    """``tail`` is the path after ``/v1.0/{project_id}/kms/``; unknown paths KMS.0201, wrong methods KMS.0215.

    ``tail`` is in routing form (:attr:`HttpRequest.path`: ``%2F`` and ``%25`` still encoded): it is split on
    its real slashes first and each segment decoded after, so a tag key may hold an encoded ``/``.
    """
    methods = _FIXED_ROUTES.get(tail)
    path_key_id = path_tag_key = ""
    if methods is None:
        parts = [unquote_segment(part) for part in tail.split("/")]
        # Huawei's Go and Java SDKs send a tag key's "/" as it is: on DELETE, every segment after tags/ is the
        # tag key's (the key and the operation are decided before, by the first segments and the method)
        tag_key = "/".join(parts[2:])
        if len(parts) == 2 and parts[1] == "tags" and parts[0]:
            methods = {"GET": OPERATIONS["list-key-tags"], "POST": OPERATIONS["create-key-tag"]}
        elif len(parts) >= 3 and parts[1] == "tags" and parts[0] and tag_key:
            methods, path_tag_key = {"DELETE": OPERATIONS["delete-key-tag"]}, tag_key
            if tag_key == "action":
                methods["POST"] = OPERATIONS["batch-key-tags"]
        else:
            refuse_if_known(tail)
            raise InvalidArgument(f"unknown request path .../kms/{tail}", code="KMS.0201")
        path_key_id = parts[0]
    operation = methods.get(method)
    if operation is None:
        raise InvalidArgument(
            f"method {method} is not supported on .../kms/{tail}; use {', '.join(sorted(methods))}", code="KMS.0215"
        )
    return Route(operation, path_key_id, path_tag_key)
