"""Every KMS v1.0 wire operation the server serves: its route, its method, how it names its key, its handler.

The handlers live in the ``kubekms.server.v1_*`` modules, one group of operations each; they translate wire fields
(through :mod:`kubekms.wire.v1.fields`) into backend calls and the backend's answers back into the wire's JSON.
Validation of values (alias syntax, ranges, states) is the keystore's; the wire's field parsers check types,
units and the wire's own formats.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubekms.errors import InvalidArgument
from kubekms.server.http_messages import unquote_segment
from kubekms.server.v1_aliases import (
    LIST_ALIASES,
    UPDATE_ALIAS,
    UPDATE_KEY_ALIAS,
    associate_alias,
    create_alias,
    delete_alias,
    list_aliases,
    moved_alias_ref,
    update_key_alias,
)
from kubekms.server.v1_asymmetric import generate_mac, get_publickey, sign, verify, verify_mac
from kubekms.server.v1_call import Handler, Operation
from kubekms.server.v1_call import KeyScope as KeyScope  # re-exported: the pipeline and the console read it here
from kubekms.server.v1_data_keys import (
    create_datakey,
    create_datakey_without_plaintext,
    data_key_ref,
    decrypt_data,
    decrypt_datakey,
    encrypt_data,
    encrypt_datakey,
    gen_random,
)
from kubekms.server.v1_grant_operations import (
    create_grant,
    list_grants,
    list_retirable_grants,
    retire_grant,
    revoke_grant,
)
from kubekms.server.v1_import import delete_imported_key_material, get_parameters_for_import, import_key_material
from kubekms.server.v1_key_pairs import create_ec_datakey_pair, create_rsa_datakey_pair
from kubekms.server.v1_keys import (
    cancel_key_deletion,
    create_key,
    describe_key,
    disable_key,
    disable_key_rotation,
    enable_key,
    enable_key_rotation,
    get_key_rotation_status,
    list_keys,
    rotate_on_demand,
    schedule_key_deletion,
    update_key_description,
    update_key_rotation_interval,
    user_instances,
    user_quotas,
)
from kubekms.server.v1_not_offered import refuse_if_known
from kubekms.server.v1_project_tags import list_kms_tags
from kubekms.server.v1_re_encrypt import re_encrypt, source_key_ref
from kubekms.server.v1_tags import batch_key_tags, create_key_tag, delete_key_tag, list_key_tags, list_keys_by_tags

LIST_KMS_TAGS = "list-kms-tags"  # GET .../kms/tags: the project's tag keys and values


# --------------------------------------------------------------------- routing

_KEY_OPERATIONS: dict[str, Handler] = {
    "describe-key": describe_key,
    "enable-key": enable_key,
    "disable-key": disable_key,
    "schedule-key-deletion": schedule_key_deletion,
    "cancel-key-deletion": cancel_key_deletion,
    "update-key-description": update_key_description,
    UPDATE_KEY_ALIAS: update_key_alias,
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
