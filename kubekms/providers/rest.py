"""Providers ``kubekms`` and ``huaweicloud``: the backend protocol over the KMS v1.0 REST wire.

One async client serves both: our own ``kubekms server`` and the real Huawei Cloud / Open
Telekom Cloud KMS speak the same wire. This module maps the protocol onto wire calls and
their fields (:mod:`kubekms.wire.v1`); :mod:`kubekms.providers.rest_transport` signs,
sends and retries them.

Endpoints of provider ``huaweicloud`` when ``endpoint`` is empty:
``https://kms.{region}.myhuaweicloud.com`` (Huawei Cloud). For Open Telekom Cloud give the
endpoint explicitly, e.g. ``https://kms.eu-de.otc.t-systems.com``.

Mapping onto the protocol:
- the wire's KeyDetails carry neither tags nor extra aliases: :meth:`RestBackend.describe_key`
  asks for them in two further calls (concurrently; where the cloud has no alias API, or the
  credential may not read tags or aliases, it reports what it may: the primary alias, no tags,
  warned once); pages of :meth:`RestBackend.list_keys` carry KeyDetails only
  (describe a key for its tags and aliases).
- the wire creates keys without tags: ``create_key(tags=...)`` creates, then tags.
- ``aad`` must be UTF-8 text of at most 128 bytes (the wire sends it as a string).
- key versions come from our ciphertext format and our server's extra KeyDetails fields;
  the cloud's are opaque (reported as 0 and 1).
- Huawei's decrypt-datakey requires ``datakey_cipher_length``, the plaintext length in bytes,
  which the protocol does not carry: it is read from the ciphertext when it is ours (kubekms
  format: sealed bytes minus the GCM tag), so data keys of any length decrypt; for a ciphertext
  of the cloud's own format, whose layout Huawei does not document, provider ``huaweicloud``
  sends :data:`CLOUD_DATA_KEY_LENGTH` (32 bytes, the length kubekms creates).
- KeyDetails ``key_state`` "7" (frozen by the cloud) reads as ``PENDING_ACTIVATION``: not usable,
  and not the owner's to enable (see :func:`kubekms.wire.v1_values.key_state_from_wire`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import ssl
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from kubekms import ciphertext as ciphertext_format
from kubekms.backend import (
    ORIGIN_KMS,
    DataKey,
    KeyMetadata,
    KeyPage,
    KeyState,
    NoGrants,
    NoKeyImport,
    NoKeyPolicies,
    NoKeyTypes,
    Quota,
    RotationStatus,
    not_offered,
)
from kubekms.errors import AccessDenied, InvalidArgument, InvalidCiphertext, NotFound, Reason, Unavailable
from kubekms.naming import is_key_id
from kubekms.providers import BackendConfig, Credentials
from kubekms.providers.endpoints import check_endpoint, shown_endpoint
from kubekms.providers.rest_transport import WireCall, WireTransport
from kubekms.providers.retry import Repeat, RetryPolicy
from kubekms.wire.v1 import answers as v1_answers
from kubekms.wire.v1 import client as v1_client
from kubekms.wire.v1 import values as v1_values

log = logging.getLogger("kubekms.providers.rest")

HUAWEICLOUD_ENDPOINT = "https://kms.{region}.myhuaweicloud.com"
REGION_NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
CLOUD_DATA_KEY_LENGTH = 32
WIRE_DATA_KEY_BYTES = 1024  # datakey_cipher_length's range on the wire: 1 to 1024
MAX_AAD_BYTES = v1_values.MAX_AAD_BYTES
TAG_PAGE = 1000


def _call(path: str, method: str = "POST", repeat: Repeat = Repeat.SAFE) -> WireCall:
    return WireCall(path, method, repeat)


# Writes that set a state (enable, disable, schedule/cancel deletion, rotation settings, tags) count
# as SAFE: a repeat converges to the same state. If the first attempt did land, the repeat may
# answer InvalidState (e.g. "not enabled" for a second disable); level-based callers such
# as the operator re-read the key and see the state they asked for.
CREATE_KEY = _call("create-key", repeat=Repeat.UNSAFE)
LIST_KEYS = _call("list-keys")
DESCRIBE_KEY = _call("describe-key")
UPDATE_DESCRIPTION = _call("update-key-description")
UPDATE_KEY_ALIAS = _call("update-key-alias")  # SAFE: a repeat renames to the name the key already has
ENABLE_KEY = _call("enable-key")
DISABLE_KEY = _call("disable-key")
SCHEDULE_DELETION = _call("schedule-key-deletion")
CANCEL_DELETION = _call("cancel-key-deletion")
ENABLE_ROTATION = _call("enable-key-rotation")
DISABLE_ROTATION = _call("disable-key-rotation")
ROTATION_INTERVAL = _call("update-key-rotation-interval")
ROTATION_STATUS = _call("get-key-rotation-status")
ROTATE = _call("rotate-on-demand", repeat=Repeat.UNSAFE)
RANDOM = _call("gen-random")
CREATE_DATAKEY = _call("create-datakey")
CREATE_DATAKEY_NO_PLAINTEXT = _call("create-datakey-without-plaintext")
ENCRYPT_DATAKEY = _call("encrypt-datakey")
DECRYPT_DATAKEY = _call("decrypt-datakey")
CREATE_ALIAS = _call("aliases", repeat=Repeat.UNSAFE)
DELETE_ALIAS = _call("aliases", "DELETE", Repeat.UNSAFE)
LIST_ALIASES = WireCall("aliases", "GET", array=True)  # a JSON array of pages
KEYS_BY_TAGS = _call("resource_instances/action")
INSTANCES = _call("user-instances", "GET")
QUOTAS = _call("user-quotas", "GET")


def _tags_call(key_id: str, suffix: str = "", method: str = "POST") -> WireCall:
    return WireCall(f"{key_id}/tags{suffix}", method)


class RestBackend(NoGrants, NoKeyPolicies, NoKeyTypes, NoKeyImport):
    """The backend protocol on one KMS v1.0 endpoint and project.

    Create it with :func:`open_kubekms_backend` / :func:`open_huaweicloud_backend`
    (or :func:`open_rest_backend` to choose the retry policy).
    """

    provider_label = "kubekms/huaweicloud (the KMS v1.0 wire)"

    def __init__(
        self,
        endpoint: str,
        project_id: str,
        credentials: Credentials,
        *,
        ssl_context: ssl.SSLContext | None = None,
        retry: RetryPolicy | None = None,
        decrypt_length_hint: int | None = None,
        request_timeout: float = 30.0,
        tags_at_creation: bool = False,
    ) -> None:
        self._wire = WireTransport(
            endpoint, project_id, credentials, ssl_context=ssl_context, retry=retry, request_timeout=request_timeout
        )
        self.endpoint = self._wire.endpoint
        self.project_id = project_id
        self._decrypt_length_hint = decrypt_length_hint
        self._tags_at_creation = tags_at_creation
        self._denied_reads: set[str] = set()

    # ------------------------------------------------------------------ lifecycle

    async def create_key(
        self,
        alias: str,
        *,
        description: str = "",
        key_spec: str = "AES_256",
        key_usage: str = "ENCRYPT_DECRYPT",
        tags: Mapping[str, str] | None = None,
        policy: str | None = None,
        origin: str = ORIGIN_KMS,
    ) -> KeyMetadata:
        if origin != ORIGIN_KMS:
            raise not_offered(self.provider_label, "keys for imported key material", Reason.UNSUPPORTED_OPERATION)
        if policy is not None:
            raise not_offered(self.provider_label, "key policies")
        # create-key is never repeated once it may have reached the KMS: a repeat could make a
        # second key. Callers that need idempotency across their own retries (the operator) tag
        # the key with their own id (the KMSKey's UID) and look for it with find_keys_by_tag
        # before creating; the alias, unique per project, refuses a duplicate with AlreadyExists.
        # A kubekms server takes the tags with the key (one transaction); Huawei's create-key has
        # no tags, so there a caller that dies between the two calls leaves an untagged key.
        body: dict[str, Any] = {
            "key_alias": alias,
            "key_spec": v1_values.wire_key_spec(key_spec),  # Huawei's names: EC_P256, not ECC_NIST_P256
            "key_usage": key_usage,
            "key_description": description,
        }
        at_creation = bool(tags) and self._tags_at_creation
        if at_creation:
            body["tags"] = v1_answers.tag_items(tags or {})
        answer = await self._wire.request(CREATE_KEY, body)
        with _answer_of(CREATE_KEY):
            info = answer.get("key_info") or {}
            key_id = str(info.get("key_id") or "")
        if not key_id:
            raise Unavailable("the KMS answered create-key without a key_id")
        self._wire.created(key_id, alias)
        if tags and not at_creation:
            await self.tag_key(key_id, tags)
        # A new key has exactly the alias and tags just written: one describe, not three reads; none
        # where the answer carries the key's details (a kubekms server's extension, as tags at creation).
        described = self._tags_at_creation and "key_state" in info
        meta = self._metadata(info) if described else await self._details(key_id)
        return _replace(meta, tags=dict(tags or {}), aliases=(alias,) if alias else ())

    async def list_keys(
        self, *, limit: int = 100, marker: str | None = None, state: KeyState | None = None, key_spec: str | None = None
    ) -> KeyPage:
        # Huawei lists only AES_256 keys unless key_spec is ALL (its ListKeysRequestBody: "to query all keys,
        # asymmetric ones included, specify ALL")
        spec = v1_values.LIST_EVERY_KEY_SPEC if key_spec is None else v1_values.wire_key_spec(key_spec)
        body: dict[str, str] = {"limit": str(limit), "key_spec": spec}
        if marker:
            body["marker"] = marker
        if state is not None:
            body["key_state"] = state.value
        answer = await self._wire.request(LIST_KEYS, body)
        with _answer_of(LIST_KEYS):
            keys = [self._metadata(details) for details in answer.get("key_details") or []]
            truncated = v1_values.from_bool(answer.get("truncated"))
            next_marker = str(answer.get("next_marker") or "") if truncated else ""
            return KeyPage(keys=keys, next_marker=next_marker or None, total=int(answer.get("total") or len(keys)))

    async def _details(self, key_ref: str) -> KeyMetadata:
        answer = await self._wire.request(DESCRIBE_KEY, {"key_id": key_ref}, key_ref=key_ref)
        with _answer_of(DESCRIBE_KEY):
            return self._metadata(answer.get("key_info") or {})

    def _metadata(self, details: Mapping[str, Any], **extra: Any) -> KeyMetadata:
        meta = v1_answers.key_metadata_from_wire(details, project_id=self.project_id)
        return meta if not extra else _replace(meta, **extra)

    async def describe_key(self, key_id: str) -> KeyMetadata:
        meta = await self._details(key_id)
        tags, aliases = await asyncio.gather(self._readable_tags(meta), self._readable_aliases(meta))
        return _replace(meta, tags=tags, aliases=tuple(sorted(aliases)))

    async def _readable_tags(self, meta: KeyMetadata) -> dict[str, str]:
        try:
            return await self.list_tags(meta.key_id)
        except AccessDenied:
            self._warn_denied("list-key-tags")
            return {}

    async def _readable_aliases(self, meta: KeyMetadata) -> list[str]:
        """Every alias; only the primary one where the cloud has no alias API (404, unknown path) or may not list."""
        try:
            return await self.list_aliases(meta.key_id)
        except AccessDenied:
            self._warn_denied("list-aliases")
        except (NotFound, InvalidArgument) as error:
            if isinstance(error, InvalidArgument) and error.reason is not Reason.UNKNOWN_PATH:
                raise
        return [meta.alias] if meta.alias else []

    def _warn_denied(self, operation: str) -> None:
        """Least privilege (e.g. the plugin's credential) may not read every detail: warn once per operation."""
        if operation not in self._denied_reads:
            self._denied_reads.add(operation)
            log.warning("KMS read denied: described keys lack it", extra={"fields": {"operation": operation}})

    async def find_keys_by_tag(self, tag_key: str, tag_value: str) -> list[KeyMetadata]:
        found: list[KeyMetadata] = []
        while True:
            body = {
                "action": "filter",
                "tags": [{"key": tag_key, "values": [tag_value]}],
                "limit": str(TAG_PAGE),
                "offset": str(len(found)),
            }
            answer = await self._wire.request(KEYS_BY_TAGS, body)
            with _answer_of(KEYS_BY_TAGS):
                resources = answer.get("resources") or []
                for resource in resources:
                    tags = v1_answers.tags_from_answer({"tags": resource.get("tags") or []})
                    found.append(self._metadata(resource.get("resource_detail") or {}, tags=tags))
                if not resources or len(found) >= int(answer.get("total_count") or 0):
                    return found

    async def update_description(self, key_id: str, description: str) -> KeyMetadata:
        await self._wire.request(UPDATE_DESCRIPTION, {"key_id": key_id, "key_description": description}, key_ref=key_id)
        return await self.describe_key(key_id)

    async def _key_call(self, call: WireCall, key_id: str, **fields: str) -> None:
        await self._wire.request(call, {"key_id": key_id, **fields}, key_ref=key_id)

    async def enable_key(self, key_id: str) -> KeyMetadata:
        await self._key_call(ENABLE_KEY, key_id)
        return await self.describe_key(key_id)

    async def disable_key(self, key_id: str) -> KeyMetadata:
        await self._key_call(DISABLE_KEY, key_id)
        return await self.describe_key(key_id)

    async def schedule_key_deletion(self, key_id: str, pending_days: int) -> KeyMetadata:
        await self._key_call(SCHEDULE_DELETION, key_id, pending_days=str(pending_days))
        return await self.describe_key(key_id)

    async def cancel_key_deletion(self, key_id: str) -> KeyMetadata:
        await self._key_call(CANCEL_DELETION, key_id)
        return await self.describe_key(key_id)

    # ------------------------------------------------------------------ rotation

    async def set_rotation(self, key_id: str, *, enabled: bool, interval_days: int | None = None) -> RotationStatus:
        await self._key_call(ENABLE_ROTATION if enabled else DISABLE_ROTATION, key_id)
        if interval_days is not None:
            body = {"key_id": key_id, "rotation_interval": interval_days}
            await self._wire.request(ROTATION_INTERVAL, body, key_ref=key_id)
        return await self.get_rotation_status(key_id)

    async def rotate_key(self, key_id: str) -> KeyMetadata:
        await self._key_call(ROTATE, key_id)
        return await self.describe_key(key_id)

    async def get_rotation_status(self, key_id: str) -> RotationStatus:
        answer = await self._wire.request(ROTATION_STATUS, {"key_id": key_id}, key_ref=key_id)
        with _answer_of(ROTATION_STATUS):
            return v1_answers.rotation_status_from_wire(answer)

    # ------------------------------------------------------------------ randomness and data keys

    async def generate_random(self, length: int) -> bytes:
        return v1_answers.random_from_wire(await self._wire.request(RANDOM, v1_client.random_request(length)))

    async def create_data_key(self, key_id: str, *, length: int = 32, aad: bytes = b"") -> DataKey:
        body = v1_client.create_datakey_request(key_id, length, _checked_aad(aad))
        answer = await self._wire.request(CREATE_DATAKEY, body, key_ref=key_id)
        data_key = v1_answers.data_key_from_wire(answer, requested_key_id=key_id)
        if data_key.plaintext is None or len(data_key.plaintext) != length:
            # a shorter key would quietly weaken what the caller seals with it (the plugin's KEK)
            size = "no plaintext" if data_key.plaintext is None else f"{len(data_key.plaintext)} bytes"
            raise Unavailable(f"the KMS answered create-datakey with a data key of {size}, not {length} bytes")
        return data_key

    async def create_data_key_without_plaintext(self, key_id: str, *, length: int = 32, aad: bytes = b"") -> DataKey:
        body = v1_client.create_datakey_request(key_id, length, _checked_aad(aad))
        answer = await self._wire.request(CREATE_DATAKEY_NO_PLAINTEXT, body, key_ref=key_id)
        return v1_answers.data_key_from_wire(answer, requested_key_id=key_id)

    async def encrypt_data_key(self, key_id: str, plaintext: bytes, *, aad: bytes = b"") -> DataKey:
        body = v1_client.encrypt_datakey_request(key_id, plaintext, _checked_aad(aad))
        answer = await self._wire.request(ENCRYPT_DATAKEY, body, key_ref=key_id)
        return v1_answers.data_key_from_wire(answer, requested_key_id=key_id)

    async def decrypt_data_key(self, key_id: str, ciphertext: bytes, *, aad: bytes = b"") -> bytes:
        length = plaintext_length(ciphertext, default=self._decrypt_length_hint)
        body = v1_client.decrypt_datakey_request(key_id, ciphertext, _checked_aad(aad), length)
        return v1_answers.data_key_plaintext_from_wire(await self._wire.request(DECRYPT_DATAKEY, body, key_ref=key_id))

    # ------------------------------------------------------------------ aliases and tags

    async def create_alias(self, key_id: str, alias: str) -> None:
        await self._wire.request(CREATE_ALIAS, {"key_id": key_id, "alias": alias}, key_ref=key_id)

    async def delete_alias(self, key_id: str, alias: str) -> None:
        await self._wire.request(DELETE_ALIAS, {"key_id": key_id, "aliases": [alias]}, key_ref=key_id)

    async def list_aliases(self, key_id: str) -> list[str]:
        answer = await self._wire.request(LIST_ALIASES, query={"key_id": key_id}, key_ref=key_id)
        with _answer_of(LIST_ALIASES):
            return v1_answers.aliases_from_wire(answer)

    async def update_key_alias(self, key_id: str, alias: str) -> KeyMetadata:
        """Huawei's update-key-alias, which names the key by its id only (its key_id pattern)."""
        resolved = await self._path_key_id(key_id)
        await self._wire.request(UPDATE_KEY_ALIAS, {"key_id": resolved, "key_alias": alias}, key_ref=resolved)
        return await self.describe_key(resolved)

    async def _path_key_id(self, key_ref: str) -> str:
        """Tag calls name the key in the URL path, where only a key id fits (aliases may hold ``/``)."""
        return key_ref.lower() if is_key_id(key_ref) else (await self._details(key_ref)).key_id

    async def tag_key(self, key_id: str, tags: Mapping[str, str]) -> None:
        if not tags:
            return
        path_key_id = await self._path_key_id(key_id)
        body = {"action": "create", "tags": v1_answers.tag_items(tags)}
        await self._wire.request(_tags_call(path_key_id, "/action"), body, key_ref=key_id)

    async def untag_key(self, key_id: str, tag_keys: Sequence[str]) -> None:
        if not tag_keys:
            return
        path_key_id = await self._path_key_id(key_id)
        body = {"action": "delete", "tags": [{"key": tag_key, "value": ""} for tag_key in tag_keys]}
        await self._wire.request(_tags_call(path_key_id, "/action"), body, key_ref=key_id)

    async def list_tags(self, key_id: str) -> dict[str, str]:
        path_key_id = await self._path_key_id(key_id)
        call = _tags_call(path_key_id, method="GET")
        answer = await self._wire.request(call, key_ref=key_id)
        with _answer_of(call):
            return v1_answers.tags_from_answer(answer)

    # ------------------------------------------------------------------ account

    async def instance_count(self) -> int:
        answer = await self._wire.request(INSTANCES)
        with _answer_of(INSTANCES):
            return int(answer.get("instance_num") or 0)

    async def quotas(self) -> list[Quota]:
        answer = await self._wire.request(QUOTAS)
        with _answer_of(QUOTAS):
            return v1_answers.quotas_from_wire(answer)

    async def check_health(self) -> None:
        """One cheap signed call (8 random bits). AccessDenied still proves the KMS answers and knows us."""
        try:
            await self._wire.request(RANDOM, v1_client.random_request(1))
        except AccessDenied:
            return

    async def close(self) -> None:
        await self._wire.close()


@contextlib.contextmanager
def _answer_of(call: WireCall) -> Iterator[None]:
    """Decoding an answer: a field of the wrong type (a string where an object or a number belongs) is
    Unavailable, not the decoder's AttributeError/TypeError/ValueError/KeyError (callers handle KMSError),
    nor its InvalidArgument (the wire's value parsers', which would blame the caller's request)."""
    try:
        yield
    except (AttributeError, TypeError, ValueError, KeyError, InvalidArgument):
        raise Unavailable(f"the KMS answered {call.path} with a field of an unexpected type") from None


def _replace(meta: KeyMetadata, **changes: Any) -> KeyMetadata:
    return dataclasses.replace(meta, **changes)


def _checked_aad(aad: bytes) -> bytes:
    if len(aad) > MAX_AAD_BYTES:
        raise InvalidArgument(
            f"aad longer than {MAX_AAD_BYTES} bytes (the v1.0 wire's limit)", reason=Reason.AAD_INVALID
        )
    try:
        aad.decode()
    except UnicodeDecodeError:
        raise InvalidArgument("aad must be UTF-8 text on the v1.0 wire", reason=Reason.AAD_INVALID) from None
    return aad


def plaintext_length(ciphertext: bytes, *, default: int | None) -> int | None:
    """The data key's length in bytes, read from a kubekms-format ciphertext; ``default`` for any other
    (or beyond the wire's 1-1024 bytes: a ciphertext of AWS Encrypt may hold up to 4096)."""
    try:
        sealed = ciphertext_format.parse(ciphertext).sealed
    except InvalidCiphertext:
        return default
    length = len(sealed) - ciphertext_format.TAG_SIZE
    return length if 1 <= length <= WIRE_DATA_KEY_BYTES else default


def _ssl_context(config: BackendConfig) -> ssl.SSLContext | None:
    if config.ca_file is None:
        return None
    try:
        return ssl.create_default_context(cafile=str(config.ca_file))
    except (OSError, ssl.SSLError) as error:
        raise InvalidArgument(f"cannot load the CA bundle {config.ca_file}: {error}") from None


async def open_rest_backend(
    config: BackendConfig,
    *,
    retry: RetryPolicy | None = None,
    decrypt_length_hint: int | None = None,
    tags_at_creation: bool = False,
) -> RestBackend:
    if not config.endpoint:
        raise InvalidArgument(f"provider {config.provider!r} needs an endpoint (http(s)://host:port)")
    if not config.endpoint.startswith(("http://", "https://")):
        raise InvalidArgument(f"endpoint must start with http:// or https://, got {shown_endpoint(config.endpoint)!r}")
    check_endpoint(config.endpoint, config.provider)
    if not config.project_id:
        raise InvalidArgument(f"provider {config.provider!r} needs a project_id")
    return RestBackend(
        config.endpoint,
        config.project_id,
        config.load_credentials(),
        ssl_context=_ssl_context(config),
        retry=retry,
        decrypt_length_hint=decrypt_length_hint,
        tags_at_creation=tags_at_creation,
    )


async def open_kubekms_backend(config: BackendConfig) -> RestBackend:
    """Our own ``kubekms server``; ``endpoint`` is required. It takes a new key's tags with create-key."""
    return await open_rest_backend(config, tags_at_creation=True)


async def open_huaweicloud_backend(config: BackendConfig) -> RestBackend:
    """Huawei Cloud / OTC KMS. ``project_id`` (the cloud's project id) is required; ``endpoint``
    defaults to ``https://kms.{region}.myhuaweicloud.com``."""
    if not config.project_id or config.project_id == "default":
        raise InvalidArgument("provider 'huaweicloud' needs project_id: the cloud project's id")
    endpoint = config.endpoint
    if not endpoint:
        if not config.region:
            raise InvalidArgument("provider 'huaweicloud' needs an endpoint or a region")
        if not REGION_NAME.fullmatch(config.region):  # it becomes part of the host name
            raise InvalidArgument(
                f"provider 'huaweicloud': region {config.region[:64]!r} is not a region name (e.g. cn-north-4, eu-de)"
            )
        endpoint = HUAWEICLOUD_ENDPOINT.format(region=config.region)
    return await open_rest_backend(
        dataclasses.replace(config, endpoint=endpoint), decrypt_length_hint=CLOUD_DATA_KEY_LENGTH
    )
