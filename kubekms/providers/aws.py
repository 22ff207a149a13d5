"""Provider ``aws``: the backend protocol on AWS KMS (or any AWS KMS wire) with boto3.

Why boto3 in threads and not aiobotocore: boto3 is AWS's own SDK and its clients are
thread-safe; aiobotocore pins narrow botocore ranges that fight boto3/moto during
resolution. Calls run on a dedicated thread pool sized to botocore's connection pool,
so they never starve the loop's default executor. One AWS call costs far more than a
thread hop.

Mapping onto the protocol:
- alias ``x`` of the protocol is AWS ``alias/x``; key ids and ARNs pass unchanged.
- ``aad`` is sent as the EncryptionContext ``{"kubekms:aad": base64(aad)}`` (injective;
  empty aad means no context).
- key versions: AWS hides them. ``current_version`` is 1 + the number of completed
  rotations (ListKeyRotations). A data key's ``key_version`` is that figure as last seen
  (cached up to ``VERSION_CACHE_SECONDS``, refreshed at once after our own rotations):
  after a rotation made elsewhere it may lag that long; AWS picks the right version from
  the ciphertext on decrypt regardless.
- ``find_keys_by_tag``, ``list_keys`` and ``instance_count`` page through ListKeys (AWS managed
  keys, the targets of ``alias/aws/*``, left out) and call per key: O(number of keys) calls.
- permissions: data keys need kms:GenerateDataKey / kms:Decrypt, and kms:ListKeyRotations for
  the version to follow rotations (without it the version stays at its last known value).
  ``describe_key`` needs kms:DescribeKey; aliases and rotation settings it fills in only
  where ListAliases and GetKeyRotationStatus are allowed (warned once). Refused tags are not
  "no tags": where ListResourceTags is refused, reading the described key's ``tags`` raises
  that AccessDenied (:class:`~kubekms.providers.aws_mapping.UnreadableTags`), so a caller that
  decides by tags (the operator's owner tags) fails instead of deciding on nothing.
- quotas: AWS's documented default of 100,000 customer managed keys per region (the
  Service Quotas API is another service and another permission).
Retries: botocore's ``standard`` mode (throttling, 5xx, connection errors, with
backoff), except that CreateKey and RotateKeyOnDemand are not repeated once they may have
run (5xx, connection lost after sending, read timeout): a repeat of CreateKey makes a second
key, one of RotateKeyOnDemand a second rotation (of AWS's 10 per key). NotFound right after
CreateKey is retried a bounded number of times, as AWS advises for its eventual consistency.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

import boto3
import botocore.config
import botocore.exceptions
import botocore.retries.standard

from kubekms.backend import (
    ORIGIN_KMS,
    DataKey,
    DataKeyPair,
    KeyMetadata,
    KeyOutput,
    KeyPage,
    KeyState,
    NoGrants,
    NoKeyImport,
    Quota,
    RotationStatus,
    not_offered,
)
from kubekms.errors import AccessDenied, InvalidArgument, InvalidState, KMSError, NotFound, Reason, Unavailable
from kubekms.providers import BackendConfig
from kubekms.providers.aws_mapping import (
    AWS_STATES,
    UnreadableTags,
    aws_key_ref,
    check_alias,
    check_range,
    encryption_context,
    key_id_of,
    map_client_error,
    tags_to_aws,
    utc,
)
from kubekms.providers.credential_headers import check_header_safe
from kubekms.providers.endpoints import ca_bundle, check_endpoint
from kubekms.wire.aws_rules import (
    CMK_QUOTA,
    DATA_KEY_BYTES,
    DEFAULT_ROTATION_DAYS,
    ENCRYPT_BYTES,
    PENDING_WINDOW_DAYS,
    RANDOM_BYTES,
    ROTATION_PERIOD_DAYS,
    SYMMETRIC,
    aws_key_spec,
    keystore_key_spec,
)

log = logging.getLogger("kubekms.providers.aws")
T = TypeVar("T")

VERSION_CACHE_SECONDS = 60.0
POOL_SIZE = 16
MAX_ATTEMPTS = 5  # botocore standard retries: each call at most 5 times
NOT_FOUND_RETRIES = 6  # after CreateKey: 0.1 + 0.2 + ... + 3.2 s at most
ROTATION_WAIT_SECONDS = 30.0


class _Answer(dict[str, Any]):
    """An operation's parsed answer: a member it lacks is Unavailable naming the operation, not a KeyError
    (a 200 whose body is not the operation's output: botocore parses it to what it could read, even {})."""

    operation = ""

    @classmethod
    def of(cls, operation: str, value: Any) -> Any:
        if isinstance(value, dict):
            answer = cls({name: cls.of(operation, member) for name, member in value.items()})
            answer.operation = operation
            return answer
        if isinstance(value, list):
            return [cls.of(operation, item) for item in value]
        return value

    @staticmethod
    def misshapen(operation: str) -> Unavailable:
        return Unavailable(f"AWS KMS {operation}: the answer does not have the operation's output shape")

    def __missing__(self, name: str) -> Any:
        raise self.misshapen(self.operation)


class AwsBackend(NoGrants, NoKeyImport):
    provider_label = "aws (through this protocol)"

    def __init__(self, client: Any, executor: ThreadPoolExecutor) -> None:
        self._client = client
        self._executor = executor
        self._versions: dict[str, tuple[int, float]] = {}
        self._denied_reads: set[str] = set()

    async def _call(self, operation: str, *, retry_not_found: bool = False, **params: Any) -> dict[str, Any]:
        method: Callable[..., dict[str, Any]] = getattr(self._client, operation)
        attempts = NOT_FOUND_RETRIES if retry_not_found else 1
        loop = asyncio.get_running_loop()
        for attempt in range(attempts):
            try:
                answer = await loop.run_in_executor(self._executor, functools.partial(method, **params))
                wrapped: dict[str, Any] = _Answer.of(operation, answer)
                return wrapped
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
                mapped = map_client_error(operation, error)
            except (AttributeError, TypeError, ValueError, KeyError):  # botocore's parser on a misshapen answer
                raise _Answer.misshapen(operation) from None
            if not isinstance(mapped, NotFound) or attempt == attempts - 1:
                raise mapped from None
            await asyncio.sleep(0.1 * 2**attempt)
        raise AssertionError("unreachable")

    async def _pages(self, operation: str, result_key: str, **params: Any) -> list[Any]:
        items: list[Any] = []
        marker: str | None = None
        while True:
            page: dict[str, Any] = {"Marker": marker} if marker else {}
            answer = await self._call(operation, **params, **page)
            items.extend(answer.get(result_key, []))
            if not answer.get("Truncated"):
                return items
            marker = answer["NextMarker"]

    async def _key_id(self, ref: str, *, retry_not_found: bool = False) -> str:
        """Management calls take only key ids or ARNs on AWS: resolve aliases first."""
        aws_ref = aws_key_ref(ref)
        if not aws_ref.startswith("alias/"):
            return aws_ref
        answer = await self._call("describe_key", KeyId=aws_ref, retry_not_found=retry_not_found)
        return str(answer["KeyMetadata"]["KeyId"])

    async def _rotations(self, key_id: str) -> list[dict[str, Any]]:
        try:
            rotations = await self._pages("list_key_rotations", "Rotations", KeyId=key_id)
        except (InvalidState, InvalidArgument):  # pending deletion, imported material: no rotations
            return []
        self._versions[key_id] = (len(rotations) + 1, time.monotonic())
        return rotations

    async def _rotation_setting(self, key_id: str) -> dict[str, Any]:
        try:
            return await self._call("get_key_rotation_status", KeyId=key_id)
        except (InvalidState, InvalidArgument):
            return {"KeyRotationEnabled": False}

    async def _current_version(self, key_id: str) -> int:
        cached = self._versions.get(key_id)
        if cached is not None and time.monotonic() - cached[1] < VERSION_CACHE_SECONDS:
            return cached[0]
        try:
            return len(await self._rotations(key_id)) + 1
        except AccessDenied:
            # A least-privilege identity (e.g. the plugin's: GenerateDataKey and Decrypt only) may lack
            # kms:ListKeyRotations. Data keys still work; only the version stops following rotations.
            version = cached[0] if cached is not None else 1
            log.warning(
                "kms:ListKeyRotations denied: key version not refreshed",
                extra={"fields": {"key_id": key_id, "version": version}},
            )
            self._versions[key_id] = (version, time.monotonic())
            return version

    async def _customer_key_ids(self) -> list[str]:
        """Every key id of the account except AWS managed keys (the targets of ``alias/aws/*``), in AWS's order."""
        keys, aliases = await asyncio.gather(self._pages("list_keys", "Keys"), self._pages("list_aliases", "Aliases"))
        managed = {entry.get("TargetKeyId") for entry in aliases if str(entry["AliasName"]).startswith("alias/aws/")}
        return [str(entry["KeyId"]) for entry in keys if entry["KeyId"] not in managed]

    async def _readable(self, operation: str, call: Awaitable[T], default: T) -> T:
        """A describe detail the identity may not read (least privilege) takes its default; warned once."""
        try:
            return await call
        except AccessDenied:
            if operation not in self._denied_reads:
                self._denied_reads.add(operation)
                log.warning("AWS KMS read denied: described keys lack it", extra={"fields": {"operation": operation}})
            return default

    async def _tags(self, key_id: str) -> Mapping[str, str]:
        try:
            return await self.list_tags(key_id)
        except AccessDenied as refusal:
            return UnreadableTags(refusal)

    async def _metadata(self, aws_meta: Mapping[str, Any]) -> KeyMetadata:
        key_id = str(aws_meta["KeyId"])
        aliases, setting, rotations, tags = await asyncio.gather(
            self._readable("ListAliases", self.list_aliases(key_id), []),
            self._readable("GetKeyRotationStatus", self._rotation_setting(key_id), {"KeyRotationEnabled": False}),
            self._readable("ListKeyRotations", self._rotations(key_id), None),
            self._tags(key_id),
        )
        if rotations is None:
            cached = self._versions.get(key_id)
            current_version, rotations = (cached[0] if cached else 1), []
        else:
            current_version = len(rotations) + 1
        return KeyMetadata(
            key_id=key_id,
            alias=aliases[0] if aliases else "",
            description=str(aws_meta.get("Description", "")),
            key_spec=keystore_key_spec(str(aws_meta.get("KeySpec", SYMMETRIC))),
            key_usage=str(aws_meta.get("KeyUsage", "ENCRYPT_DECRYPT")),
            state=AWS_STATES.get(str(aws_meta.get("KeyState")), KeyState.DISABLED),
            created_at=utc(aws_meta.get("CreationDate")) or datetime.now(UTC),
            current_version=current_version,
            rotation_enabled=bool(setting.get("KeyRotationEnabled")),
            rotation_interval_days=int(setting.get("RotationPeriodInDays") or DEFAULT_ROTATION_DAYS),
            last_rotation_at=utc(rotations[-1].get("RotationDate")) if rotations else None,
            deletion_date=utc(aws_meta.get("DeletionDate")),
            aliases=tuple(aliases),
            tags=tags,
            origin=str(aws_meta.get("Origin", "AWS_KMS")).lower(),
            project_id=str(aws_meta.get("AWSAccountId", "")),
        )

    # lifecycle
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
        if alias:
            check_alias(alias)
        params: dict[str, Any] = {"KeySpec": aws_key_spec(key_spec), "KeyUsage": key_usage}
        if description:
            params["Description"] = description
        if tags:
            params["Tags"] = tags_to_aws(tags)
        if policy is not None:
            params["Policy"] = policy
        created = await self._call("create_key", **params)
        key_id = str(created["KeyMetadata"]["KeyId"])
        if alias:
            try:
                await self._call("create_alias", AliasName=f"alias/{alias}", TargetKeyId=key_id, retry_not_found=True)
            except KMSError:
                # No half-made key left usable: the new key goes away after AWS's shortest window.
                await self._call("schedule_key_deletion", KeyId=key_id, PendingWindowInDays=PENDING_WINDOW_DAYS[0])
                raise
        described = await self._call("describe_key", KeyId=key_id, retry_not_found=True)
        return await self._metadata(described["KeyMetadata"])

    async def list_keys(
        self, *, limit: int = 100, marker: str | None = None, state: KeyState | None = None, key_spec: str | None = None
    ) -> KeyPage:
        """Markers are offsets into AWS's key order. AWS neither counts nor filters by state or spec: ``total``
        pages through every key id, and a state or spec filter describes every key (O(keys) calls)."""
        check_range("list limit", limit, (1, 1000), reason=Reason.LIST_LIMIT_INVALID)
        if marker and not marker.isdigit():
            raise InvalidArgument(f"invalid marker {marker!r}", reason=Reason.MARKER_INVALID)
        offset = int(marker) if marker else 0
        ids = await self._customer_key_ids()
        if state is not None or key_spec is not None:
            described = await asyncio.gather(*(self._call("describe_key", KeyId=key_id) for key_id in ids))
            ids = [key_id for key_id, answer in zip(ids, described, strict=True)
                   if _listed(answer["KeyMetadata"], state, key_spec)]  # fmt: skip
        page = await asyncio.gather(*(self.describe_key(key_id) for key_id in ids[offset : offset + limit]))
        next_marker = str(offset + limit) if offset + limit < len(ids) else None
        return KeyPage(keys=list(page), next_marker=next_marker, total=len(ids))

    async def describe_key(self, key_id: str) -> KeyMetadata:
        answer = await self._call("describe_key", KeyId=aws_key_ref(key_id))
        return await self._metadata(answer["KeyMetadata"])

    async def find_keys_by_tag(self, tag_key: str, tag_value: str) -> list[KeyMetadata]:
        ids = await self._customer_key_ids()

        async def matches(key_id: str) -> bool:
            try:
                return (await self.list_tags(key_id)).get(tag_key) == tag_value
            except (NotFound, InvalidArgument, AccessDenied):  # deleted meanwhile, or not ours to read
                return False

        found = await asyncio.gather(*(matches(key_id) for key_id in ids))
        return [await self.describe_key(key_id) for key_id, hit in zip(ids, found, strict=True) if hit]

    async def update_description(self, key_id: str, description: str) -> KeyMetadata:
        resolved = await self._key_id(key_id)
        await self._call("update_key_description", KeyId=resolved, Description=description)
        return await self.describe_key(resolved)

    async def _key_state(self, key_id: str) -> tuple[str, KeyState]:
        answer = await self._call("describe_key", KeyId=aws_key_ref(key_id))
        meta = answer["KeyMetadata"]
        return str(meta["KeyId"]), AWS_STATES.get(str(meta.get("KeyState")), KeyState.DISABLED)

    async def enable_key(self, key_id: str) -> KeyMetadata:
        """AWS's EnableKey is idempotent; the protocol refuses a key that is not disabled."""
        resolved, state = await self._key_state(key_id)
        if state is KeyState.ENABLED:
            raise InvalidState(f"key {resolved} is not disabled (state ENABLED)", reason=Reason.KEY_NOT_DISABLED)
        await self._call("enable_key", KeyId=resolved)
        return await self.describe_key(resolved)

    async def disable_key(self, key_id: str) -> KeyMetadata:
        """AWS's DisableKey is idempotent; the protocol refuses a key that is not enabled."""
        resolved, state = await self._key_state(key_id)
        if state is KeyState.DISABLED:
            raise InvalidState(f"key {resolved} is not enabled (state DISABLED)", reason=Reason.KEY_NOT_ENABLED)
        await self._call("disable_key", KeyId=resolved)
        return await self.describe_key(resolved)

    async def schedule_key_deletion(self, key_id: str, pending_days: int) -> KeyMetadata:
        check_range("a pending window (days)", pending_days, PENDING_WINDOW_DAYS, reason=Reason.PENDING_DAYS_INVALID)
        resolved = await self._key_id(key_id)
        await self._call("schedule_key_deletion", KeyId=resolved, PendingWindowInDays=pending_days)
        return await self.describe_key(resolved)

    async def cancel_key_deletion(self, key_id: str) -> KeyMetadata:
        resolved = await self._key_id(key_id)
        await self._call("cancel_key_deletion", KeyId=resolved)
        return await self.describe_key(resolved)

    # rotation
    async def set_rotation(self, key_id: str, *, enabled: bool, interval_days: int | None = None) -> RotationStatus:
        resolved = await self._key_id(key_id)
        if enabled:
            days = DEFAULT_ROTATION_DAYS if interval_days is None else interval_days
            check_range("a rotation period (days)", days, ROTATION_PERIOD_DAYS)
            await self._call("enable_key_rotation", KeyId=resolved, RotationPeriodInDays=days)
        else:
            await self._call("disable_key_rotation", KeyId=resolved)
        return await self.get_rotation_status(resolved)

    async def rotate_key(self, key_id: str) -> KeyMetadata:
        resolved = await self._key_id(key_id)
        before = len(await self._rotations(resolved))
        await self._call("rotate_key_on_demand", KeyId=resolved)
        # On-demand rotation completes asynchronously on AWS: wait (bounded) until it is listed.
        deadline = time.monotonic() + ROTATION_WAIT_SECONDS
        delay = 0.05
        while len(await self._rotations(resolved)) <= before:
            if time.monotonic() > deadline:
                raise Unavailable(f"AWS KMS rotation of {resolved} did not complete in {ROTATION_WAIT_SECONDS:.0f}s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        return await self.describe_key(resolved)

    async def get_rotation_status(self, key_id: str) -> RotationStatus:
        resolved = await self._key_id(key_id)
        setting, rotations = await asyncio.gather(self._rotation_setting(resolved), self._rotations(resolved))
        return RotationStatus(
            enabled=bool(setting.get("KeyRotationEnabled")),
            interval_days=int(setting.get("RotationPeriodInDays") or DEFAULT_ROTATION_DAYS),
            last_rotation_at=utc(rotations[-1].get("RotationDate")) if rotations else None,
            number_of_rotations=len(rotations),
            next_rotation_at=utc(setting.get("NextRotationDate")),
        )

    # randomness and data keys
    async def generate_random(self, length: int) -> bytes:
        check_range("random byte counts", length, RANDOM_BYTES, reason=Reason.RANDOM_LENGTH_INVALID)
        answer = await self._call("generate_random", NumberOfBytes=length)
        return bytes(answer["Plaintext"])

    async def _generate(self, operation: str, key_id: str, length: int, aad: bytes) -> dict[str, Any]:
        check_range("data key lengths (bytes)", length, DATA_KEY_BYTES, reason=Reason.DATA_KEY_LENGTH_INVALID)
        return await self._call(
            operation,
            KeyId=aws_key_ref(key_id),
            NumberOfBytes=length,
            **_context_param(aad),
        )

    async def _data_key(self, answer: Mapping[str, Any], plaintext: bytes | None) -> DataKey:
        key_id = key_id_of(str(answer["KeyId"]))
        return DataKey(
            key_id=key_id,
            key_version=await self._current_version(key_id),
            ciphertext=bytes(answer["CiphertextBlob"]),
            plaintext=plaintext,
        )

    async def create_data_key(self, key_id: str, *, length: int = 32, aad: bytes = b"") -> DataKey:
        answer = await self._generate("generate_data_key", key_id, length, aad)
        plaintext = bytes(answer["Plaintext"])
        if len(plaintext) != length:  # a shorter key would quietly weaken what the caller seals with it
            raise Unavailable(f"AWS KMS generate_data_key answered a data key of {len(plaintext)} bytes, not {length}")
        return await self._data_key(answer, plaintext)

    async def create_data_key_without_plaintext(self, key_id: str, *, length: int = 32, aad: bytes = b"") -> DataKey:
        answer = await self._generate("generate_data_key_without_plaintext", key_id, length, aad)
        return await self._data_key(answer, None)

    async def encrypt_data_key(self, key_id: str, plaintext: bytes, *, aad: bytes = b"") -> DataKey:
        check_range("plaintext lengths (bytes) for Encrypt", len(plaintext), ENCRYPT_BYTES)
        answer = await self._call(
            "encrypt",
            KeyId=aws_key_ref(key_id),
            Plaintext=plaintext,
            **_context_param(aad),
        )
        return await self._data_key(answer, None)

    async def decrypt_data_key(self, key_id: str, ciphertext: bytes, *, aad: bytes = b"") -> bytes:
        if not ciphertext:
            raise InvalidArgument("ciphertext must not be empty")
        answer = await self._call(
            "decrypt",
            KeyId=aws_key_ref(key_id),
            CiphertextBlob=ciphertext,
            **_context_param(aad),
        )
        return bytes(answer["Plaintext"])

    # asymmetric and HMAC keys, passed through
    async def get_public_key(self, key_id: str) -> bytes:
        return bytes((await self._call("get_public_key", KeyId=aws_key_ref(key_id)))["PublicKey"])

    async def sign(self, key_id: str, message: bytes, *, algorithm: str, digest: bool = False) -> KeyOutput:
        answer = await self._call("sign", KeyId=aws_key_ref(key_id), Message=message,
                                  MessageType="DIGEST" if digest else "RAW", SigningAlgorithm=algorithm)  # fmt: skip
        return KeyOutput(key_id_of(str(answer["KeyId"])), bytes(answer["Signature"]))

    async def verify(
        self, key_id: str, message: bytes, signature: bytes, *, algorithm: str, digest: bool = False
    ) -> bool:
        call = self._call("verify", KeyId=aws_key_ref(key_id), Message=message, Signature=signature,
                          MessageType="DIGEST" if digest else "RAW", SigningAlgorithm=algorithm)  # fmt: skip
        return await _valid(call, Reason.SIGNATURE_INVALID)

    async def encrypt_asymmetric(self, key_id: str, plaintext: bytes, *, algorithm: str) -> KeyOutput:
        answer = await self._call("encrypt", KeyId=aws_key_ref(key_id), Plaintext=plaintext,
                                  EncryptionAlgorithm=algorithm)  # fmt: skip
        return KeyOutput(key_id_of(str(answer["KeyId"])), bytes(answer["CiphertextBlob"]))

    async def decrypt_asymmetric(self, key_id: str, ciphertext: bytes, *, algorithm: str) -> KeyOutput:
        answer = await self._call("decrypt", KeyId=aws_key_ref(key_id), CiphertextBlob=ciphertext,
                                  EncryptionAlgorithm=algorithm)  # fmt: skip
        return KeyOutput(key_id_of(str(answer["KeyId"])), bytes(answer["Plaintext"]))

    async def generate_mac(self, key_id: str, message: bytes, *, algorithm: str) -> KeyOutput:
        answer = await self._call("generate_mac", KeyId=aws_key_ref(key_id), Message=message, MacAlgorithm=algorithm)
        return KeyOutput(key_id_of(str(answer["KeyId"])), bytes(answer["Mac"]))

    async def verify_mac(self, key_id: str, message: bytes, mac: bytes, *, algorithm: str) -> bool:
        call = self._call("verify_mac", KeyId=aws_key_ref(key_id), Message=message, Mac=mac, MacAlgorithm=algorithm)
        return await _valid(call, Reason.MAC_INVALID)

    async def create_data_key_pair(
        self, key_id: str, pair_spec: str, *, aad: bytes = b"", with_plaintext: bool = True
    ) -> DataKeyPair:
        operation = "generate_data_key_pair" if with_plaintext else "generate_data_key_pair_without_plaintext"
        answer = await self._call(operation, KeyId=aws_key_ref(key_id), KeyPairSpec=pair_spec, **_context_param(aad))
        plaintext = answer.get("PrivateKeyPlaintext")
        return DataKeyPair(
            key_id_of(str(answer["KeyId"])),
            pair_spec,
            bytes(answer["PublicKey"]),
            bytes(answer["PrivateKeyCiphertextBlob"]),
            None if plaintext is None else bytes(plaintext),
        )

    # aliases and tags
    async def create_alias(self, key_id: str, alias: str) -> None:
        check_alias(alias)
        resolved = await self._key_id(key_id)
        await self._call("create_alias", AliasName=f"alias/{alias}", TargetKeyId=resolved)

    async def delete_alias(self, key_id: str, alias: str) -> None:
        aliases = await self.list_aliases(key_id)
        if alias not in aliases:
            raise NotFound(f"alias {alias!r} does not name key {key_id}")
        await self._call("delete_alias", AliasName=f"alias/{alias}")

    async def list_aliases(self, key_id: str) -> list[str]:
        """Oldest first where AWS says (CreationDate). AWS has no primary alias: ``KeyMetadata.alias`` is the
        first of these, and any alias may be deleted."""
        resolved = await self._key_id(key_id)
        entries = await self._pages("list_aliases", "Aliases", KeyId=resolved)
        entries.sort(key=lambda entry: utc(entry.get("CreationDate")) or datetime.min.replace(tzinfo=UTC))
        return [str(entry["AliasName"]).removeprefix("alias/") for entry in entries]

    async def update_alias(self, alias: str, key_id: str) -> None:
        check_alias(alias)
        await self._call("update_alias", AliasName=f"alias/{alias}", TargetKeyId=await self._key_id(key_id))

    async def update_key_alias(self, key_id: str, alias: str) -> KeyMetadata:
        raise not_offered(self.provider_label, "renaming a key's primary alias (an AWS key has none: create the new "
                          "alias, then delete the old one)", Reason.UNSUPPORTED_OPERATION)  # fmt: skip

    async def get_key_policy(self, key_id: str) -> str | None:
        answer = await self._call("get_key_policy", KeyId=await self._key_id(key_id), PolicyName="default")
        return str(answer["Policy"])

    async def put_key_policy(self, key_id: str, document: str) -> None:
        await self._call("put_key_policy", KeyId=await self._key_id(key_id), PolicyName="default", Policy=document)

    async def tag_key(self, key_id: str, tags: Mapping[str, str]) -> None:
        resolved = await self._key_id(key_id)
        await self._call("tag_resource", KeyId=resolved, Tags=tags_to_aws(tags))

    async def untag_key(self, key_id: str, tag_keys: Sequence[str]) -> None:
        resolved = await self._key_id(key_id)
        await self._call("untag_resource", KeyId=resolved, TagKeys=list(tag_keys))

    async def list_tags(self, key_id: str) -> dict[str, str]:
        resolved = await self._key_id(key_id)
        entries = await self._pages("list_resource_tags", "Tags", KeyId=resolved)
        return {str(entry["TagKey"]): str(entry["TagValue"]) for entry in entries}

    # account
    async def instance_count(self) -> int:
        return len(await self._customer_key_ids())

    async def quotas(self) -> list[Quota]:
        return [Quota(resource="CMK", used=await self.instance_count(), limit=CMK_QUOTA)]

    async def check_health(self) -> None:
        await self._call("list_keys", Limit=1)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._client.close)
        self._executor.shutdown(wait=False)


def _listed(aws_meta: Mapping[str, Any], state: KeyState | None, key_spec: str | None) -> bool:
    """A described key passes list_keys's filters (None: any)."""
    return (state is None or AWS_STATES.get(str(aws_meta.get("KeyState"))) is state) and (
        key_spec is None or keystore_key_spec(str(aws_meta.get("KeySpec", SYMMETRIC))) == key_spec
    )


def _session(config: BackendConfig) -> boto3.session.Session:
    """Static credentials when configured (file or Secret), otherwise the ambient chain
    (environment, web identity / IRSA, container and instance profile).

    Region: the config's, else ``AWS_REGION`` (set by EKS and the AWS SDKs of other languages,
    which botocore does not read), else botocore's own (``AWS_DEFAULT_REGION``, config file).
    """
    region = config.region or os.environ.get("AWS_REGION") or None
    if config.credentials is None and config.credentials_file is None:
        return boto3.session.Session(region_name=region)
    credentials = config.load_credentials()
    check_header_safe(credentials)
    return boto3.session.Session(
        aws_access_key_id=credentials.access_key,
        aws_secret_access_key=credentials.secret_key,
        aws_session_token=credentials.security_token or None,
        region_name=region,
    )


def kms_client(config: BackendConfig) -> Any:
    """The boto3 KMS client this provider uses for ``config`` (region, credentials, endpoint, CA,
    retries); public for kubekms.envelope, whose aws-kms master keys are the SDK's own on it."""
    if config.endpoint:
        check_endpoint(config.endpoint, config.provider)
    if config.ca_file:
        ca_bundle(config.ca_file)  # botocore would take a bad one and fail each call as a connection error
    client_config = botocore.config.Config(
        retries={"mode": "standard", "max_attempts": MAX_ATTEMPTS},
        max_pool_connections=POOL_SIZE,
        connect_timeout=5,
        read_timeout=30,
    )
    try:
        client = _session(config).client(
            "kms",
            endpoint_url=config.endpoint or None,
            verify=str(config.ca_file) if config.ca_file else None,
            config=client_config,
        )
    except botocore.exceptions.NoRegionError:
        raise InvalidArgument("provider 'aws' needs a region (config region or AWS_REGION)") from None
    except ValueError as error:
        raise InvalidArgument(f"provider 'aws': {error}") from None
    _no_repeat_once_run(client, MAX_ATTEMPTS)
    return client


# Every run makes something new: CreateKey has no idempotency token (a repeat makes a second key), each
# RotateKeyOnDemand rotates once more. (A repeated CreateAlias or ReplicateKey makes nothing twice: AlreadyExists.)
UNREPEATABLE = frozenset({"CreateKey", "RotateKeyOnDemand"})
_NOT_SENT = (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError)


def _no_repeat_once_run(client: Any, max_attempts: int) -> None:
    """botocore's standard retries, except that an :data:`UNREPEATABLE` call is not repeated once it may
    have run (a 5xx answer, a connection lost after sending, a read timeout): only when it was never sent
    or was refused unrun (throttled), as the REST provider's rule."""
    events = client.meta.events
    service = client.meta.service_model.service_id.hyphenize()
    events.unregister(f"needs-retry.{service}", unique_id=f"retry-config-{service}")
    standard = botocore.retries.standard.register_retry_handler(client, max_attempts=max_attempts)
    events.unregister(f"needs-retry.{service}", unique_id=f"retry-config-{service}")

    def needs_retry(**kwargs: Any) -> float | None:
        operation = kwargs.get("operation")
        if operation is not None and operation.name in UNREPEATABLE:
            caught, response = kwargs.get("caught_exception"), kwargs.get("response")
            if caught is not None and not isinstance(caught, _NOT_SENT):
                return None
            if caught is None and response is not None and response[0].status_code >= 500:
                return None
        delay: float | None = standard.needs_retry(**kwargs)
        return delay

    events.register(f"needs-retry.{service}", needs_retry, unique_id=f"retry-config-{service}")


async def open_backend(config: BackendConfig) -> AwsBackend:
    client = await asyncio.to_thread(kms_client, config)
    return AwsBackend(client, ThreadPoolExecutor(max_workers=POOL_SIZE, thread_name_prefix="kubekms-aws"))


def _context_param(aad: bytes) -> dict[str, Any]:
    """The EncryptionContext parameter, only when the additional data gives one."""
    context = encryption_context(aad)
    return {"EncryptionContext": context} if context else {}


async def _valid(call: Awaitable[Any], mismatch: Reason) -> bool:
    """Verify/VerifyMac answer a mismatch with an error (KMSInvalidSignatureException, KMSInvalidMacException)."""
    try:
        await call
    except InvalidArgument as error:
        if error.reason is mismatch:
            return False
        raise
    return True
