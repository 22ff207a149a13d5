"""v1.0 grants: create, list, list-retirable, revoke and retire, the keystore's (the AWS wire's) grants."""

from __future__ import annotations

from kubekms import policies
from kubekms.backend import Grant, GrantTerms
from kubekms.errors import InvalidArgument, NotFound
from kubekms.server.v1_call import Call, JsonAnswer, page_request, signed_in
from kubekms.server.v1_call import KeyScope as KeyScope  # re-exported: the pipeline and the console read it here
from kubekms.wire.v1 import grants as v1_grants
from kubekms.wire.v1 import values as v1_values

# --------------------------------------------------------------------- grants (the keystore's, as the AWS wire's)


async def create_grant(call: Call) -> JsonAnswer:
    """Huawei's create-grant: ``grantee_principal`` and ``retiring_principal`` name principals of the server;
    a caller allowed only through a grant makes grants within it (as AWS's CreateGrant)."""
    fields, caller = call.fields, signed_in(call)
    key = await call.backend.describe_key(call.key_ref())
    kind = fields.text("grantee_principal_type", default=v1_grants.USER_TYPE, max_chars=16) or v1_grants.USER_TYPE
    if kind != v1_grants.USER_TYPE:
        raise InvalidArgument("grantee_principal_type must be 'user': a grant names one principal", code="KMS.0308")
    grantee = v1_grants.principal_from_request(fields.identifier("grantee_principal", code="KMS.0308"),
                                               "grantee_principal")  # fmt: skip
    names = fields.strings("operations", code="KMS.0308", max_chars=64)
    operations = v1_grants.operations_from_request(names)
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
        permissions=tuple(dict.fromkeys(names)),
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
    caller = v1_grants.principal_arn(call.project_id, signed_in(call).name)
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
    caller = signed_in(call)
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
