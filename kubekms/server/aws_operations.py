"""The AWS KMS JSON 1.1 operations (``TrentService.<Op>``) on the backend protocol.

Each operation names the permission it needs: the v1.0 wire's operation name, so one
principal file governs both wires. Keys are the same keystore keys on both wires:
``arn:aws:kms:<region>:<project id>:key/<key id>``, and keystore alias ``x`` is
``alias/x``. EncryptionContext becomes additional authenticated data by the same
canonical serialization as the v1.0 wire's ``encryption_context``.

AWS's limits and ranges are :mod:`kubekms.wire.aws_rules` (shared with the ``aws``
provider; the keystore's own limits are wider). AWS behaviour kept here: a disabled key
refuses cryptographic operations and rotation changes with DisabledException, EnableKey/DisableKey are idempotent,
CancelKeyDeletion leaves the key Disabled. Key policies, grants and multi-region keys
are not offered: authorization is the principals file.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from kubekms import ciphertext as ciphertext_format
from kubekms.backend import DATA_KEY_SPECS, KeyMetadata, KeyState
from kubekms.errors import Disabled, InvalidArgument
from kubekms.server.aws_call import (
    MAX_TEXT_CHARS,
    SYMMETRIC,
    AwsCall,
    AwsRequest,
    JsonObject,
    key_metadata,
    paged,
    present,
    seconds,
    tags_field,
)
from kubekms.server.operations import KeyScope
from kubekms.wire import inputs
from kubekms.wire.aws_errors import IncorrectKey
from kubekms.wire.aws_rules import (
    ALIAS_PREFIX,
    CIPHERTEXT_BYTES,
    DATA_KEY_BYTES,
    DEFAULT_ROTATION_DAYS,
    ENCRYPT_BYTES,
    LIST_KEYS_LIMIT,
    PENDING_WINDOW_DAYS,
    RANDOM_BYTES,
    RESERVED_ALIAS_PREFIX,
    ROTATION_PERIOD_DAYS,
)


async def _usable_for_rotation(call: AwsCall, key_ref: str) -> KeyMetadata:
    key = present(await call.backend.describe_key(key_ref))
    if key.state is KeyState.DISABLED:
        raise Disabled(f"{call.key_arn(key.key_id)} is disabled.")
    return key


# ------------------------------------------------------------------ lifecycle


async def create_key(call: AwsCall) -> JsonObject:
    spec = call.text("KeySpec") or call.text("CustomerMasterKeySpec") or SYMMETRIC
    usage = call.text("KeyUsage", default="ENCRYPT_DECRYPT")
    if spec != SYMMETRIC or usage != "ENCRYPT_DECRYPT":
        raise InvalidArgument(f"this server offers KeySpec {SYMMETRIC} with KeyUsage ENCRYPT_DECRYPT only")
    if call.text("Origin", default="AWS_KMS") != "AWS_KMS" or call.body.get("MultiRegion"):
        raise InvalidArgument("this server offers Origin AWS_KMS single-region keys only")
    if call.body.get("Policy"):
        raise InvalidArgument("key policies are not supported: authorization is by the server's principals")
    key = await call.backend.create_key(
        "", description=call.text("Description"), key_spec="AES_256", key_usage=usage, tags=tags_field(call)
    )
    return {"KeyMetadata": key_metadata(call, key)}


async def describe_key(call: AwsCall) -> JsonObject:
    return {"KeyMetadata": key_metadata(call, present(await call.backend.describe_key(call.key_ref())))}


async def list_keys(call: AwsCall) -> JsonObject:
    limit = call.integer("Limit", LIST_KEYS_LIMIT, default=100) or 100
    marker = call.marker()
    listed = await call.backend.list_keys(limit=limit, marker=None if marker is None else str(marker))
    answer: JsonObject = {
        "Keys": [{"KeyId": key.key_id, "KeyArn": call.key_arn(key.key_id)} for key in listed.keys],
        "Truncated": listed.next_marker is not None,
    }
    if listed.next_marker is not None:
        answer["NextMarker"] = listed.next_marker
    return answer


async def update_key_description(call: AwsCall) -> JsonObject:
    await call.backend.update_description(call.key_ref(), call.text("Description", required=True))
    return {}


async def enable_key(call: AwsCall) -> JsonObject:
    key = present(await call.backend.describe_key(call.key_ref()))
    if key.state is not KeyState.ENABLED:  # AWS: enabling an enabled key succeeds
        await call.backend.enable_key(key.key_id)
    return {}


async def disable_key(call: AwsCall) -> JsonObject:
    key = present(await call.backend.describe_key(call.key_ref()))
    if key.state is not KeyState.DISABLED:  # AWS: disabling a disabled key succeeds
        await call.backend.disable_key(key.key_id)
    return {}


async def schedule_key_deletion(call: AwsCall) -> JsonObject:
    days = call.integer("PendingWindowInDays", PENDING_WINDOW_DAYS, default=30) or 30
    key = await call.backend.schedule_key_deletion(call.key_ref(), days)
    return {
        "KeyId": call.key_arn(key.key_id),
        "DeletionDate": seconds(key.deletion_date),
        "KeyState": "PendingDeletion",
        "PendingWindowInDays": days,
    }


async def cancel_key_deletion(call: AwsCall) -> JsonObject:
    key = await call.backend.cancel_key_deletion(call.key_ref())  # the key comes back Disabled
    return {"KeyId": call.key_arn(key.key_id)}


# ------------------------------------------------------------------ rotation


async def enable_key_rotation(call: AwsCall) -> JsonObject:
    days = call.integer("RotationPeriodInDays", ROTATION_PERIOD_DAYS, default=DEFAULT_ROTATION_DAYS)
    key = await _usable_for_rotation(call, call.key_ref())
    await call.backend.set_rotation(key.key_id, enabled=True, interval_days=days)
    return {}


async def disable_key_rotation(call: AwsCall) -> JsonObject:
    key = await _usable_for_rotation(call, call.key_ref())
    await call.backend.set_rotation(key.key_id, enabled=False)
    return {}


async def get_key_rotation_status(call: AwsCall) -> JsonObject:
    key = present(await call.backend.describe_key(call.key_ref()))
    status = await call.backend.get_rotation_status(key.key_id)
    answer: JsonObject = {
        "KeyId": call.key_arn(key.key_id),
        "KeyRotationEnabled": status.enabled,
        "RotationPeriodInDays": status.interval_days,
    }
    if status.enabled and status.next_rotation_at is not None:
        answer["NextRotationDate"] = status.next_rotation_at.timestamp()
    return answer


async def list_key_rotations(call: AwsCall) -> JsonObject:
    """One entry per completed rotation (version 2 onwards); the keystore keeps the date of the last only."""
    key = present(await call.backend.describe_key(call.key_ref()))
    status = await call.backend.get_rotation_status(key.key_id)
    rotations: list[JsonObject] = [{"KeyId": call.key_arn(key.key_id)} for _ in range(status.number_of_rotations)]
    if rotations and status.last_rotation_at is not None:
        rotations[-1]["RotationDate"] = status.last_rotation_at.timestamp()
    return paged(rotations, call, "Rotations")


async def rotate_key_on_demand(call: AwsCall) -> JsonObject:
    key = await _usable_for_rotation(call, call.key_ref())
    await call.backend.rotate_key(key.key_id)
    return {"KeyId": key.key_id}


# ------------------------------------------------------------------ randomness and data keys


async def generate_random(call: AwsCall) -> JsonObject:
    length = call.integer("NumberOfBytes", RANDOM_BYTES)
    if length is None:
        raise InvalidArgument("NumberOfBytes is required")
    return {"Plaintext": base64.b64encode(await call.backend.generate_random(length)).decode()}


def _data_key_length(call: AwsCall) -> int:
    length = call.integer("NumberOfBytes", DATA_KEY_BYTES)
    spec = call.text("KeySpec")
    if (length is None) == (not spec):
        raise InvalidArgument("specify exactly one of KeySpec and NumberOfBytes")
    if length is not None:
        return length
    if spec not in DATA_KEY_SPECS:
        raise InvalidArgument(f"KeySpec must be one of {', '.join(DATA_KEY_SPECS)}")
    return DATA_KEY_SPECS[spec]


async def generate_data_key(call: AwsCall) -> JsonObject:
    length = _data_key_length(call)
    data_key = await call.backend.create_data_key(call.key_ref(), length=length, aad=call.aad())
    assert data_key.plaintext is not None
    return {
        "KeyId": call.key_arn(data_key.key_id),
        "CiphertextBlob": base64.b64encode(data_key.ciphertext).decode(),
        "Plaintext": base64.b64encode(data_key.plaintext).decode(),
    }


async def generate_data_key_without_plaintext(call: AwsCall) -> JsonObject:
    length = _data_key_length(call)
    data_key = await call.backend.create_data_key_without_plaintext(call.key_ref(), length=length, aad=call.aad())
    return {
        "KeyId": call.key_arn(data_key.key_id),
        "CiphertextBlob": base64.b64encode(data_key.ciphertext).decode(),
    }


async def encrypt(call: AwsCall) -> JsonObject:
    call.check_algorithm()
    plaintext = call.blob("Plaintext", ENCRYPT_BYTES)
    data_key = await call.backend.encrypt_data_key(call.key_ref(), plaintext, aad=call.aad())
    return {
        "KeyId": call.key_arn(data_key.key_id),
        "CiphertextBlob": base64.b64encode(data_key.ciphertext).decode(),
        "EncryptionAlgorithm": SYMMETRIC,
    }


def decrypt_key_ref(call: AwsRequest) -> str:
    """Decrypt's KeyId is optional: our ciphertext names its key."""
    if call.body.get("KeyId") is not None:
        return call.key_ref()
    return ciphertext_format.parse(call.blob("CiphertextBlob", CIPHERTEXT_BYTES)).key_id


async def decrypt(call: AwsCall) -> JsonObject:
    call.check_algorithm()
    blob = call.blob("CiphertextBlob", CIPHERTEXT_BYTES)
    made_by = ciphertext_format.parse(blob).key_id
    key_ref = decrypt_key_ref(call)
    if key_ref != made_by and present(await call.backend.describe_key(key_ref)).key_id != made_by:
        raise IncorrectKey("The key ID in the request does not identify the key that encrypted the ciphertext.")
    plaintext = await call.backend.decrypt_data_key(made_by, blob, aad=call.aad())
    return {
        "KeyId": call.key_arn(made_by),
        "Plaintext": base64.b64encode(plaintext).decode(),
        "EncryptionAlgorithm": SYMMETRIC,
    }


# ------------------------------------------------------------------ aliases and tags


def alias_name(call: AwsRequest) -> str:
    """``alias/x`` -> keystore alias ``x``; AWS reserves ``alias/aws/``."""
    name = call.text("AliasName", required=True)
    if not name.startswith(ALIAS_PREFIX) or len(name) <= len(ALIAS_PREFIX):
        raise InvalidArgument("AliasName must begin with 'alias/' followed by a name")
    if name.startswith(RESERVED_ALIAS_PREFIX):
        raise InvalidArgument("alias names beginning with 'alias/aws/' are reserved for AWS managed keys")
    return name.removeprefix(ALIAS_PREFIX)


async def create_alias(call: AwsCall) -> JsonObject:
    key = present(await call.backend.describe_key(call.key_ref("TargetKeyId")))
    await call.backend.create_alias(key.key_id, alias_name(call))
    return {}


async def delete_alias(call: AwsCall) -> JsonObject:
    alias = alias_name(call)
    key = await call.backend.describe_key(alias)
    await call.backend.delete_alias(key.key_id, alias)
    return {}


async def list_aliases(call: AwsCall) -> JsonObject:
    if call.body.get("KeyId") is not None:
        keys = [present(await call.backend.describe_key(call.key_ref()))]
    else:
        keys, marker = [], None
        while True:
            listed = await call.backend.list_keys(limit=LIST_KEYS_LIMIT[1], marker=marker)
            keys.extend(listed.keys)
            if listed.next_marker is None:
                break
            marker = listed.next_marker
    entries = [
        {"AliasName": f"alias/{alias}", "AliasArn": call.alias_arn(alias), "TargetKeyId": key.key_id}
        for key in keys
        for alias in _primary_first(key)
    ]
    return paged(entries, call, "Aliases")


def _primary_first(key: KeyMetadata) -> list[str]:
    """The keystore's primary alias first: AWS clients (and provider ``aws``) take the first as primary."""
    others = sorted(alias for alias in key.aliases if alias != key.alias)
    return [key.alias, *others] if key.alias else others


async def tag_resource(call: AwsCall) -> JsonObject:
    tags = tags_field(call)
    if not tags:
        raise InvalidArgument("Tags must not be empty")
    await call.backend.tag_key(call.key_ref(), tags)
    return {}


async def untag_resource(call: AwsCall) -> JsonObject:
    tag_keys = call.body.get("TagKeys")
    if not isinstance(tag_keys, list) or not tag_keys:
        raise InvalidArgument("TagKeys must be a non-empty list of strings")
    tag_keys = [inputs.text(tag_key, "TagKeys[]", max_chars=MAX_TEXT_CHARS) for tag_key in tag_keys]
    await call.backend.untag_key(call.key_ref(), tag_keys)
    return {}


async def list_resource_tags(call: AwsCall) -> JsonObject:
    tags = await call.backend.list_tags(call.key_ref())
    return paged([{"TagKey": k, "TagValue": v} for k, v in sorted(tags.items())], call, "Tags")


# ------------------------------------------------------------------ the table


Handler = Callable[[AwsCall], Awaitable[JsonObject]]


@dataclass(frozen=True)
class AwsOperation:
    """``permission``: the v1.0 operation name principals grant; ``key_ref`` finds the key for KEY scope."""

    permission: str
    scope: KeyScope
    handler: Handler
    key_ref: Callable[[AwsRequest], str] = AwsRequest.key_ref
    key_optional: bool = False  # without a KeyId the call is account-wide (ListAliases)

    def scope_of(self, call: AwsRequest) -> KeyScope:
        if self.key_optional and call.body.get("KeyId") is None:
            return KeyScope.ACCOUNT
        return self.scope


OPERATIONS: dict[str, AwsOperation] = {
    "CreateKey": AwsOperation("create-key", KeyScope.ACCOUNT, create_key),
    "DescribeKey": AwsOperation("describe-key", KeyScope.KEY, describe_key),
    "ListKeys": AwsOperation("list-keys", KeyScope.ACCOUNT, list_keys),
    "UpdateKeyDescription": AwsOperation("update-key-description", KeyScope.KEY, update_key_description),
    "EnableKey": AwsOperation("enable-key", KeyScope.KEY, enable_key),
    "DisableKey": AwsOperation("disable-key", KeyScope.KEY, disable_key),
    "ScheduleKeyDeletion": AwsOperation("schedule-key-deletion", KeyScope.KEY, schedule_key_deletion),
    "CancelKeyDeletion": AwsOperation("cancel-key-deletion", KeyScope.KEY, cancel_key_deletion),
    "EnableKeyRotation": AwsOperation("enable-key-rotation", KeyScope.KEY, enable_key_rotation),
    "DisableKeyRotation": AwsOperation("disable-key-rotation", KeyScope.KEY, disable_key_rotation),
    "GetKeyRotationStatus": AwsOperation("get-key-rotation-status", KeyScope.KEY, get_key_rotation_status),
    "ListKeyRotations": AwsOperation("get-key-rotation-status", KeyScope.KEY, list_key_rotations),
    "RotateKeyOnDemand": AwsOperation("rotate-on-demand", KeyScope.KEY, rotate_key_on_demand),
    "GenerateRandom": AwsOperation("gen-random", KeyScope.NONE, generate_random),
    "GenerateDataKey": AwsOperation("create-datakey", KeyScope.KEY, generate_data_key),
    "GenerateDataKeyWithoutPlaintext": AwsOperation(
        "create-datakey-without-plaintext", KeyScope.KEY, generate_data_key_without_plaintext
    ),
    "Encrypt": AwsOperation("encrypt-datakey", KeyScope.KEY, encrypt),
    "Decrypt": AwsOperation("decrypt-datakey", KeyScope.KEY, decrypt, key_ref=decrypt_key_ref),
    "CreateAlias": AwsOperation("create-alias", KeyScope.KEY, create_alias, key_ref=lambda c: c.key_ref("TargetKeyId")),
    "DeleteAlias": AwsOperation("delete-alias", KeyScope.KEY, delete_alias, key_ref=alias_name),
    "ListAliases": AwsOperation("list-aliases", KeyScope.KEY, list_aliases, key_optional=True),
    "TagResource": AwsOperation("batch-key-tags", KeyScope.KEY, tag_resource),
    "UntagResource": AwsOperation("delete-key-tag", KeyScope.KEY, untag_resource),
    "ListResourceTags": AwsOperation("list-key-tags", KeyScope.KEY, list_resource_tags),
}
