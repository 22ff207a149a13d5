"""One request of the AWS KMS JSON 1.1 wire as its operations see it: fields, key references, answers.

Field parsing with AWS's validation messages, the key reference forms AWS accepts (key id, key
ARN, ``alias/x``, alias ARN) mapped onto keystore references, and KeyMetadata as AWS's JSON.

Regions as AWS's: a key made through this wire belongs to the region of the request's SigV4
credential scope and does not exist from another region (NotFoundException), an ARN naming another
region names no key here (NotFoundException) and one naming another account is refused
(AccessDeniedException: keys are never shared across accounts here). Keys made through the v1.0 and
Cloud KMS wires have no region and are seen from every region, with that region in their ARN.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from kubekms import ciphertext as ciphertext_format
from kubekms.backend import ORIGIN_EXTERNAL, Backend, GrantTerms, KeyMetadata, KeyState, key_algorithms
from kubekms.errors import AccessDenied, InvalidArgument, NotFound
from kubekms.naming import is_key_id
from kubekms.providers.local import LocalBackend
from kubekms.wire import inputs
from kubekms.wire.aws_rules import CIPHERTEXT_BYTES, LIST_LIMIT, SYMMETRIC, aws_key_spec
from kubekms.wire.v1.values import encryption_context_aad

JsonObject = dict[str, Any]
_UNPARSED = object()
MAX_TEXT_CHARS = 8192  # any string field; the keystore checks descriptions, aliases and tags tighter
MAX_KEY_REF_CHARS = 2048  # AWS's limit on KeyId (key id, key ARN, alias name or alias ARN)
IGNORE_CIPHERTEXT = "IGNORE_CIPHERTEXT"
DRY_RUN_MODIFIERS = (IGNORE_CIPHERTEXT,)

# KeyMetadata's list of the algorithms a key answers to, by its usage
ALGORITHMS_FIELD = {
    "ENCRYPT_DECRYPT": "EncryptionAlgorithms",
    "SIGN_VERIFY": "SigningAlgorithms",
    "GENERATE_VERIFY_MAC": "MacAlgorithms",
}

AWS_STATE = {
    KeyState.ENABLED: "Enabled",
    KeyState.DISABLED: "Disabled",
    KeyState.PENDING_DELETION: "PendingDeletion",
    KeyState.PENDING_IMPORT: "PendingImport",
    KeyState.PENDING_ACTIVATION: "Creating",
}


class Caller(Protocol):
    """The signed-in principal, for what an operation authorises itself (a second key, the policy lockout check)."""

    @property
    def name(self) -> str: ...

    @property
    def all_keys(self) -> bool: ...

    async def authorize_action(
        self,
        action: str,
        backend: Backend,
        key_ref: str,
        *,
        account: str,
        context: Callable[[], Mapping[str, str]] = ...,
        label: str = "",
        grant_filter: Callable[[GrantTerms], bool] | None = None,
    ) -> None: ...

    def keeps_policy_control(self, document: str, key_id: str, names: Iterable[str], account: str) -> bool: ...

    async def authorize_tag_change(
        self, backend: Backend, key_ref: str, tag_keys: Iterable[str], *, account: str
    ) -> None: ...


@dataclass(slots=True)  # not frozen: a frozen dataclass's construction costs three times as much, twice a request
class AwsRequest:
    """One authenticated request: its JSON body, the tenant (the AWS account), the signer's region and principal."""

    account: str
    region: str
    body: Mapping[str, Any]
    caller: Caller | None = field(default=None, kw_only=True)
    # fields parsed once per request: the pipeline, the region check and the operation each ask for the key
    # (Decrypt's from its ciphertext); shared with the request's AwsCall (on)
    _parsed: dict[tuple[object, ...], Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def on(self, backend: Backend) -> AwsCall:
        """This request with the backend of its account, keeping what was parsed of it."""
        # every field copied without AwsCall's __init__ (keyword arguments and a dict made to be replaced: 0.33 ->
        # 0.14 µs); tests/server/test_request_path_calls.py checks that no field is left behind
        call = object.__new__(AwsCall)
        call.account, call.region, call.body, call.caller = self.account, self.region, self.body, self.caller
        call._parsed, call.backend = self._parsed, backend
        return call

    def key_arn(self, key_id: str) -> str:
        return f"arn:aws:kms:{self.region}:{self.account}:key/{key_id}"

    def alias_arn(self, alias: str) -> str:
        return f"arn:aws:kms:{self.region}:{self.account}:alias/{alias}"

    # -------------------------------------------------------------- fields

    def text(self, name: str, *, required: bool = False, default: str = "", max_chars: int = MAX_TEXT_CHARS) -> str:
        value = self.body.get(name)
        if value is None:
            if required:
                raise InvalidArgument(f"1 validation error detected: Value null at '{name}' must not be null")
            return default
        return inputs.text(value, name, max_chars=max_chars)

    def integer(self, name: str, bounds: tuple[int, int], *, default: int | None = None) -> int | None:
        value = self.body.get(name)
        if value is None:
            return default
        return inputs.integer(value, name, bounds, allow_text=False)

    def marker(self) -> int | None:
        """``Marker``: the offset this server hands out as NextMarker (ASCII digits, 64-bit)."""
        return inputs.marker(self.body.get("Marker"), "Marker")

    def blob(self, name: str, bounds: tuple[int, int]) -> bytes:
        field_key = ("blob", name, bounds)  # parsed once, no closure per call (as key_ref)
        value = self._parsed.get(field_key, _UNPARSED)
        if value is _UNPARSED:
            value = self._parsed[field_key] = self._blob(name, bounds)
        return value  # type: ignore[no-any-return]

    def _blob(self, name: str, bounds: tuple[int, int]) -> bytes:
        value = self.text(name, required=True)
        try:  # base64.b64decode(value, validate=True) without its Python wrapper
            data = binascii.a2b_base64(value, strict_mode=True)
        except (binascii.Error, ValueError):  # (ValueError: a str that is not ASCII)
            raise InvalidArgument(f"{name} is not valid base64") from None
        low, high = bounds
        if not low <= len(data) <= high:
            raise InvalidArgument(f"{name} must be {low} to {high} bytes long, got {len(data)}")
        return data

    def aad(self, *, opening: bool = False) -> bytes:
        """The EncryptionContext as associated data; ``opening``: for a decrypt (see encryption_context_aad)."""
        context = self.body.get("EncryptionContext")
        if context in (None, {}):
            return b""
        if not isinstance(context, dict) or not all(isinstance(v, str) for v in context.values()):
            raise InvalidArgument("EncryptionContext must be a map of strings to strings")
        return encryption_context_aad(context, opening=opening)

    def check_algorithm(self) -> None:
        algorithm = self.text("EncryptionAlgorithm", default=SYMMETRIC)
        if algorithm != SYMMETRIC:
            raise InvalidArgument(f"EncryptionAlgorithm must be {SYMMETRIC} for a symmetric key")

    def dry_run(self) -> bool:
        """``DryRun``: check the call as if it were made, then refuse it (DryRunOperationException) undone."""
        value = self.body.get("DryRun", False)  # a look-up and a type check: cheaper than keeping the answer
        if not isinstance(value, bool):
            raise InvalidArgument("DryRun must be a boolean")
        return value

    def ignores_ciphertext(self) -> bool:
        """A dry run with DryRunModifiers IGNORE_CIPHERTEXT: only the permission on the named key is checked."""
        modifiers = self.body.get("DryRunModifiers")
        if modifiers is None:
            return False
        if not isinstance(modifiers, list) or not set(modifiers) <= set(DRY_RUN_MODIFIERS):
            raise InvalidArgument(f"DryRunModifiers must be a list of {', '.join(DRY_RUN_MODIFIERS)}")
        return self.dry_run() and IGNORE_CIPHERTEXT in modifiers

    def key_ref(self, name: str = "KeyId") -> str:
        """The keystore reference (key id or alias) for a KeyId in any AWS form."""
        # parsed once: asked three times a request (pipeline, region check, operation); no closure per call
        field_key = ("key_ref", name)
        value = self._parsed.get(field_key, _UNPARSED)
        if value is _UNPARSED:
            value = self._parsed[field_key] = self._key_ref(name)
        return value  # type: ignore[no-any-return]

    def _key_ref(self, name: str) -> str:
        return keystore_ref(self.text(name, required=True, max_chars=MAX_KEY_REF_CHARS), self.account, self.region)

    def envelope(self, name: str = "CiphertextBlob") -> ciphertext_format.Envelope:
        """The header of one of our data-key ciphertexts (which names its key), from a base64 field."""
        field_key = ("envelope", name)  # parsed once, no closure per call (as key_ref)
        value = self._parsed.get(field_key, _UNPARSED)
        if value is _UNPARSED:
            value = self._parsed[field_key] = ciphertext_format.parse(self.blob(name, CIPHERTEXT_BYTES))
        return value  # type: ignore[no-any-return]


@dataclass(slots=True)
class AwsCall(AwsRequest):
    """A request with the backend of its account: what an operation runs on."""

    backend: Backend


def keystore_ref(value: str, account: str, region: str) -> str:
    """key id, key ARN, ``alias/x`` or alias ARN of this account and region -> keystore key id or alias ``x``."""
    resource = value
    if value.startswith("arn:"):
        parts = value.split(":", 5)
        if len(parts) != 6 or parts[2] != "kms":
            raise NotFound(f"Invalid arn {value}")
        if parts[4] != account:  # AWS's answer when no key policy of the other account lets this one in
            raise AccessDenied(
                f"account {account} is not authorized to use {value}: no resource-based policy allows access "
                "from another account (this server shares no key across accounts)"
            )
        if parts[3] != region:  # each region is its own KMS: its keys are unknown here
            raise NotFound(f"Invalid arn {value}: it names region {parts[3]!r}, this request is in {region!r}")
        resource = parts[5]
        if resource.startswith("key/"):
            resource = resource.removeprefix("key/")
    if resource.startswith("alias/"):
        alias = resource.removeprefix("alias/")
        if not alias:
            raise NotFound("Alias must not be empty")
        return alias
    if not is_key_id(resource):
        raise NotFound(f"Invalid keyId '{value}'")
    return resource


async def of_region(call: AwsCall, key_ref: str) -> bool:
    """Whether the key is seen from the call's region: its own or no region (a missing key: its operation answers)."""
    try:
        region = await regional(call.backend).key_region(key_ref)
    except NotFound:
        return True
    return region in ("", call.region)


async def check_region(call: AwsCall, key_ref: str) -> None:
    """A key of another region does not exist from this one."""
    try:  # of_region's, inlined: once per request, one coroutine fewer
        region = await regional(call.backend).key_region(key_ref)
    except NotFound:
        return
    if region not in ("", call.region):
        named = call.key_arn(key_ref) if is_key_id(key_ref) else call.alias_arn(key_ref)
        raise NotFound(f"Key '{named}' does not exist" if is_key_id(key_ref) else f"Alias '{named}' is not found.")


def regional(backend: Backend) -> LocalBackend:
    """The server's own keystore, which keeps each key's region (every project of the server has one)."""
    if not isinstance(backend, LocalBackend):
        raise InvalidArgument("the AWS wire keeps key regions in the server's own keystore only")
    return backend


def seconds(moment: datetime | None) -> float | None:
    return moment.timestamp() if moment is not None else None


def present(key: KeyMetadata) -> KeyMetadata:
    if key.state is KeyState.DESTROYED:
        raise NotFound(f"Key '{key.key_id}' does not exist")
    return key


def key_metadata(call: AwsCall, key: KeyMetadata) -> JsonObject:
    answer: JsonObject = {
        "AWSAccountId": call.account,
        "KeyId": key.key_id,
        "Arn": call.key_arn(key.key_id),
        "CreationDate": key.created_at.timestamp(),
        "Enabled": key.state is KeyState.ENABLED,
        "Description": key.description,
        "KeyUsage": key.key_usage,
        "KeyState": AWS_STATE.get(key.state, "Unavailable"),
        "Origin": "EXTERNAL" if key.origin == ORIGIN_EXTERNAL else "AWS_KMS",
        "KeyManager": "CUSTOMER",
        "CustomerMasterKeySpec": aws_key_spec(key.key_spec),
        "KeySpec": aws_key_spec(key.key_spec),
        ALGORITHMS_FIELD.get(key.key_usage, "EncryptionAlgorithms"): list(key_algorithms(key.key_spec, key.key_usage)),
        "MultiRegion": False,
    }
    if key.deletion_date is not None:
        answer["DeletionDate"] = key.deletion_date.timestamp()
    if key.origin == ORIGIN_EXTERNAL and key.state is not KeyState.PENDING_IMPORT:
        expires = key.material_expires_at
        answer["ExpirationModel"] = "KEY_MATERIAL_DOES_NOT_EXPIRE" if expires is None else "KEY_MATERIAL_EXPIRES"
        if expires is not None:
            answer["ValidTo"] = expires.timestamp()
    return answer


def tags_field(call: AwsCall, name: str = "Tags") -> dict[str, str]:
    items = call.body.get(name) or []
    if not isinstance(items, list):
        raise InvalidArgument(f"{name} must be a list of {{TagKey, TagValue}}")
    tags: dict[str, str] = {}
    for item in items:
        if not isinstance(item, dict):
            raise InvalidArgument(f"every entry of {name} must be an object with TagKey and TagValue")
        tag_key = inputs.text(item.get("TagKey"), "TagKey", max_chars=MAX_TEXT_CHARS)
        tags[tag_key] = inputs.text(item.get("TagValue"), "TagValue", max_chars=MAX_TEXT_CHARS)  # required, as on AWS
    return tags


def paged(
    items: list[Any], call: AwsCall, result_key: str, *, limits: tuple[int, int] = LIST_LIMIT, default_limit: int = 50
) -> JsonObject:
    """AWS-style paging over a list computed in full (aliases, tags, rotations: small per key)."""
    limit = call.integer("Limit", limits, default=default_limit) or default_limit
    start = call.marker() or 0
    page = items[start : start + limit]
    answer: JsonObject = {result_key: page, "Truncated": start + limit < len(items)}
    if answer["Truncated"]:
        answer["NextMarker"] = str(start + limit)
    return answer
