"""The AWS KMS JSON 1.1 operations (``TrentService.<Op>``) on the backend protocol.

Each operation names the permission it needs: the v1.0 wire's operation name, so one
principal file governs both wires. Keys are the same keystore keys on both wires:
``arn:aws:kms:<region>:<project id>:key/<key id>``, and keystore alias ``x`` is
``alias/x``. EncryptionContext becomes additional authenticated data by the same
canonical serialization as the v1.0 wire's ``encryption_context``.

AWS's limits and ranges are :mod:`kubekms.wire.aws_rules` (shared with the ``aws``
provider; the keystore's own limits are wider). AWS behaviour kept here: a disabled key
refuses cryptographic operations and rotation changes with DisabledException, EnableKey/DisableKey are idempotent,
CancelKeyDeletion leaves the key Disabled. Key-only operations refuse an alias with NotFoundException;
``alias/aws/`` is reserved (NotAuthorizedException). Key policies (one per key, named ``default``)
are evaluated with the principals file by the pipeline (:mod:`kubekms.server.principals`); an
operation that names a second key (ReEncrypt's destination, UpdateAlias's new target) authorises
it itself. Grants (CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant) are
effective at once: a grant token must name a grant this server issued, and adds no permission.
Key types as AWS's: symmetric (SYMMETRIC_DEFAULT), RSA and ECC keys (Sign, Verify, GetPublicKey; RSA
keys for SIGN_VERIFY or ENCRYPT_DECRYPT with OAEP) and HMAC keys (GenerateMac, VerifyMac); each refuses
the others' operations with InvalidKeyUsageException, and only symmetric keys rotate. Keys of Origin
EXTERNAL (symmetric) wait in PendingImport for material wrapped under GetParametersForImport's RSA key;
the keystore seals it like its own and never hands it out. Multi-region keys are not offered.
"""

from __future__ import annotations

import binascii  # b2a_base64 without b64encode's wrapper: the same bytes, 20 ns less a call
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from kubekms import policies
from kubekms.backend import (
    DATA_KEY_SPECS,
    KEY_SPECS,
    ORIGIN_EXTERNAL,
    ORIGIN_KMS,
    SYMMETRIC_KEY_SPEC,
    Grant,
    GrantTerms,
    KeyMetadata,
    KeyState,
    key_algorithms,
)
from kubekms.errors import AccessDenied, Disabled, InvalidArgument, NotFound, Reason
from kubekms.keystore import rules
from kubekms.keystore.store import KeyVersion
from kubekms.naming import is_key_id
from kubekms.server.aws_call import (
    ALGORITHMS_FIELD,
    MAX_KEY_REF_CHARS,
    MAX_TEXT_CHARS,
    AwsCall,
    AwsRequest,
    JsonObject,
    check_region,
    key_metadata,
    keystore_ref,
    of_region,
    paged,
    present,
    regional,
    seconds,
    tags_field,
)
from kubekms.server.operations import KeyScope
from kubekms.wire import inputs
from kubekms.wire.aws_errors import (
    DryRunOperation,
    IncorrectKey,
    InvalidGrantToken,
    MalformedPolicyDocument,
    NotAuthorized,
)
from kubekms.wire.aws_rules import (
    ALIAS_NAME_PATTERN,
    ALIAS_PREFIX,
    CIPHERTEXT_BYTES,
    DATA_KEY_BYTES,
    DEFAULT_ROTATION_DAYS,
    ENCRYPT_BYTES,
    GRANT_CONSTRAINT_CHARS,
    GRANT_CONSTRAINT_PAIRS,
    GRANT_NAME_CHARS,
    GRANT_NAME_PATTERN,
    IMPORT_BLOB_BYTES,
    KEY_POLICIES_LIMIT,
    KEY_POLICY_NAME,
    LIST_KEYS_LIMIT,
    MAC_BYTES,
    MAC_MESSAGE_BYTES,
    MAX_GRANT_TOKENS,
    MESSAGE_TYPES,
    PENDING_WINDOW_DAYS,
    POLICY_TEXT,
    PRINCIPAL_ARN,
    RANDOM_BYTES,
    RESERVED_ALIAS_PREFIX,
    ROTATION_PERIOD_DAYS,
    ROTATIONS_LIMIT,
    SIGN_MESSAGE_BYTES,
    SIGNATURE_BYTES,
    SYMMETRIC,
    aws_key_spec,
    key_type,
)

ORIGINS = {"AWS_KMS": ORIGIN_KMS, "EXTERNAL": ORIGIN_EXTERNAL}  # CreateKey's Origin -> the keystore's
DOES_NOT_EXPIRE = "KEY_MATERIAL_DOES_NOT_EXPIRE"
RESOURCE_OWNERS = ("SELF", "OTHER_ACCOUNTS_VIA_RAM")  # ListKeys ResourceOwners
NEW_KEY_MATERIAL = "NEW_KEY_MATERIAL"
IMPORT_TYPES = (NEW_KEY_MATERIAL, "EXISTING_KEY_MATERIAL")  # ImportKeyMaterial ImportType
ROTATIONS_ONLY, ALL_KEY_MATERIAL = "ROTATIONS_ONLY", "ALL_KEY_MATERIAL"  # ListKeyRotations' IncludeKeyMaterial
MAX_EPOCH_SECONDS = 253402300800  # year 10000


def key_id_ref(call: AwsRequest, name: str = "KeyId") -> str:
    """Key-only operations take a key id or key ARN: an alias names no key there (NotFoundException), as on AWS."""
    value = call.text(name, required=True, max_chars=MAX_KEY_REF_CHARS)
    ref = keystore_ref(value, call.account, call.region)
    if not is_key_id(ref):
        raise NotFound(f"Invalid keyId '{value}': {name} takes a key id or key ARN here, not an alias")
    return ref


async def _authorize(call: AwsCall, action: str, key_ref: str, context: dict[str, str] | None = None) -> None:
    """A second key of a call (the pipeline authorised the first): the caller's key policy decision on it."""
    if call.caller is None:
        raise AccessDenied(f"{action} on key {key_ref!r} needs a signed-in principal")
    await check_region(call, key_ref)
    await call.caller.authorize_action(action, call.backend, key_ref, account=call.account,
                                       context=lambda: context or {})  # fmt: skip


async def _usable_for_rotation(call: AwsCall, key_ref: str) -> KeyMetadata:
    key = present(await call.backend.describe_key(key_ref))
    if key.state is KeyState.DISABLED:
        raise Disabled(f"{call.key_arn(key.key_id)} is disabled.")
    return key


# ------------------------------------------------------------------ lifecycle


def _no_custom_key_store(call: AwsRequest) -> None:
    if call.body.get("CustomKeyStoreId") is not None:
        key_store = call.text("CustomKeyStoreId", max_chars=64)
        raise NotFound(f"custom key store {key_store!r} does not exist: this server has none",
                       reason=Reason.CUSTOM_KEY_STORE_NOT_FOUND)  # fmt: skip


async def create_key(call: AwsCall) -> JsonObject:
    _no_custom_key_store(call)
    spec = call.text("KeySpec") or call.text("CustomerMasterKeySpec") or SYMMETRIC
    usage = call.text("KeyUsage", default="ENCRYPT_DECRYPT")
    key_spec = SYMMETRIC_KEY_SPEC if spec == SYMMETRIC else spec
    if key_spec not in KEY_SPECS or spec == SYMMETRIC_KEY_SPEC:  # AWS names no KeySpec AES_256
        offered = ", ".join(aws_key_spec(name) for name in KEY_SPECS)
        raise InvalidArgument(f"KeySpec {spec!r} is not offered; this server offers {offered}")
    if spec != SYMMETRIC and call.body.get("KeyUsage") is None:
        raise InvalidArgument(f"KeyUsage is required for a KeySpec other than {SYMMETRIC} (AWS's rule)")
    origin = call.text("Origin", default="AWS_KMS")
    if origin not in ORIGINS or call.body.get("MultiRegion") or call.body.get("XksKeyId") is not None:
        raise InvalidArgument(f"this server offers single-region keys of Origin {' or '.join(ORIGINS)} only")
    document = call.text("Policy", max_chars=policies.grammar.MAX_POLICY_CHARS) or None
    if document is not None:
        _check_policy(call, document, "", ())  # before the key exists: a refused policy leaves no key behind
    key = await regional(call.backend).create_key(
        "",
        region=call.region,
        description=call.text("Description"),
        key_spec=key_spec,
        key_usage=usage,
        tags=tags_field(call),
        policy=document,  # stored with the key, in one transaction
        origin=ORIGINS[origin],
    )
    return {"KeyMetadata": key_metadata(call, key)}


async def describe_key(call: AwsCall) -> JsonObject:
    return {"KeyMetadata": key_metadata(call, present(await call.backend.describe_key(call.key_ref())))}


async def list_keys(call: AwsCall) -> JsonObject:
    limit = call.integer("Limit", LIST_KEYS_LIMIT, default=100) or 100
    marker = call.marker()
    owners = call.body.get("ResourceOwners")
    if owners is not None:
        if not isinstance(owners, list) or not 1 <= len(owners) <= 2 or not set(owners) <= set(RESOURCE_OWNERS):
            raise InvalidArgument(f"ResourceOwners must hold one or two of {', '.join(RESOURCE_OWNERS)}")
        if "SELF" not in owners:  # keys other accounts share through RAM: none, no key is shared across accounts
            return {"Keys": [], "Truncated": False}
    listed = await regional(call.backend).list_keys(
        limit=limit, marker=None if marker is None else str(marker), region=call.region
    )
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
    """One entry per completed rotation, oldest first; ALL_KEY_MATERIAL adds the original material, undated."""
    include = call.text("IncludeKeyMaterial", default=ROTATIONS_ONLY)
    if include not in (ROTATIONS_ONLY, ALL_KEY_MATERIAL):
        raise InvalidArgument(f"IncludeKeyMaterial must be {ROTATIONS_ONLY} or {ALL_KEY_MATERIAL}")
    key = present(await call.backend.describe_key(call.key_ref()))
    if key.key_spec != SYMMETRIC_KEY_SPEC:  # as AWS: asymmetric and HMAC keys have no key material rotations at all
        raise InvalidArgument(f"{call.key_arn(key.key_id)} is a {key.key_spec} key: only {SYMMETRIC} keys have key"
                              " material rotations to list", reason=Reason.UNSUPPORTED_OPERATION)  # fmt: skip
    versions = await regional(call.backend).key_versions(key.key_id)
    entries: list[JsonObject] = []
    for version in versions:
        entry: JsonObject = {"KeyId": call.key_arn(key.key_id), "KeyMaterialState": _material_state(version, key)}
        if version.pending:  # imported for the next on-demand rotation: no rotation yet, so no date
            if include == ROTATIONS_ONLY:
                continue
        elif version.version > 1:
            entry["RotationDate"] = version.created_at.timestamp()
            entry["RotationType"] = "ON_DEMAND" if version.on_demand else "AUTOMATIC"
        elif include == ROTATIONS_ONLY:
            continue
        entries.append(entry)
    return paged(entries, call, "Rotations", limits=ROTATIONS_LIMIT, default_limit=100)


def _material_state(version: KeyVersion, key: KeyMetadata) -> str:
    if version.pending:
        return "PENDING_ROTATION"
    return "CURRENT" if version.version == key.current_version else "NON_CURRENT"


async def rotate_key_on_demand(call: AwsCall) -> JsonObject:
    key = await _usable_for_rotation(call, call.key_ref())
    await call.backend.rotate_key(key.key_id)
    return {"KeyId": key.key_id}


# ------------------------------------------------------------------ randomness and data keys


def _no_recipient(call: AwsRequest) -> None:
    """Recipient (a Nitro Enclaves attestation document): AWS then answers the secret only sealed to the enclave's
    key. This server verifies no attestation, so it refuses the call rather than answer the secret in the clear."""
    if call.body.get("Recipient") is not None:
        raise InvalidArgument(
            "Recipient (a Nitro Enclaves attestation document) is not supported by this server; the call is refused "
            "rather than answered with the plaintext in the clear"
        )


async def generate_random(call: AwsCall) -> JsonObject:
    _no_recipient(call)
    _no_custom_key_store(call)
    length = call.integer("NumberOfBytes", RANDOM_BYTES)
    if length is None:
        raise InvalidArgument("NumberOfBytes is required")
    return {"Plaintext": binascii.b2a_base64(await call.backend.generate_random(length), newline=False).decode()}


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
    _no_recipient(call)
    length = _data_key_length(call)
    data_key = await call.backend.create_data_key(call.key_ref(), length=length, aad=call.aad())
    assert data_key.plaintext is not None
    return {
        "KeyId": call.key_arn(data_key.key_id),
        "CiphertextBlob": binascii.b2a_base64(data_key.ciphertext, newline=False).decode(),
        "Plaintext": binascii.b2a_base64(data_key.plaintext, newline=False).decode(),
    }


async def generate_data_key_without_plaintext(call: AwsCall) -> JsonObject:
    length = _data_key_length(call)
    data_key = await call.backend.create_data_key_without_plaintext(call.key_ref(), length=length, aad=call.aad())
    return {
        "KeyId": call.key_arn(data_key.key_id),
        "CiphertextBlob": binascii.b2a_base64(data_key.ciphertext, newline=False).decode(),
    }


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode()


def _no_asymmetric_context(call: AwsRequest) -> None:
    """AWS's rule: an RSA ciphertext binds no encryption context, so one is refused rather than ignored (ignored, a
    key policy's kms:EncryptionContext condition on it would be met by any caller claiming the context)."""
    if call.body.get("EncryptionContext"):
        raise InvalidArgument("EncryptionContext is not supported when encrypting/decrypting with asymmetric keys")


async def encrypt(call: AwsCall) -> JsonObject:
    algorithm = call.text("EncryptionAlgorithm", default=SYMMETRIC)
    plaintext = call.blob("Plaintext", ENCRYPT_BYTES)
    if algorithm != SYMMETRIC:  # an RSA key's OAEP; the keystore refuses it on any other key
        _no_asymmetric_context(call)
        made = await call.backend.encrypt_asymmetric(call.key_ref(), plaintext, algorithm=algorithm)
        return {"KeyId": call.key_arn(made.key_id), "CiphertextBlob": _b64(made.data), "EncryptionAlgorithm": algorithm}
    data_key = await call.backend.encrypt_data_key(call.key_ref(), plaintext, aad=call.aad())
    return {
        "KeyId": call.key_arn(data_key.key_id),
        "CiphertextBlob": binascii.b2a_base64(data_key.ciphertext, newline=False).decode(),
        "EncryptionAlgorithm": SYMMETRIC,
    }


def decrypt_key_ref(call: AwsRequest) -> str:
    """Decrypt's KeyId is optional: our ciphertext names its key (but a dry run that ignores it needs KeyId)."""
    if call.body.get("KeyId") is not None or call.ignores_ciphertext():
        return call.key_ref()
    return call.envelope().key_id


async def decrypt(call: AwsCall) -> JsonObject:
    _no_recipient(call)
    if call.ignores_ciphertext():  # the pipeline authorised the KeyId: all such a dry run checks
        raise DryRunOperation("Decrypt")
    algorithm = call.text("EncryptionAlgorithm", default=SYMMETRIC)
    blob = call.blob("CiphertextBlob", CIPHERTEXT_BYTES)
    if algorithm != SYMMETRIC:  # as on AWS, an asymmetric ciphertext needs its KeyId: it does not name its key
        _no_asymmetric_context(call)
        opened = await call.backend.decrypt_asymmetric(call.key_ref(), blob, algorithm=algorithm)
        return {"KeyId": call.key_arn(opened.key_id), "Plaintext": _b64(opened.data), "EncryptionAlgorithm": algorithm}
    made_by = await _made_by(call, decrypt_key_ref(call))
    plaintext = await call.backend.decrypt_data_key(made_by, blob, aad=call.aad(opening=True))
    return {
        "KeyId": call.key_arn(made_by),
        "Plaintext": binascii.b2a_base64(plaintext, newline=False).decode(),
        "EncryptionAlgorithm": SYMMETRIC,
    }


def re_encrypt_source_ref(call: AwsRequest) -> str:
    """ReEncrypt's SourceKeyId is optional, like Decrypt's KeyId: our ciphertext names its key."""
    if call.body.get("SourceKeyId") is not None or call.ignores_ciphertext():
        return call.key_ref("SourceKeyId")
    return call.envelope().key_id


async def _made_by(call: AwsCall, key_ref: str) -> str:
    """The key that made the CiphertextBlob, after checking it is the one the request names (IncorrectKeyException)."""
    made_by = call.envelope().key_id
    if key_ref != made_by and present(await call.backend.describe_key(key_ref)).key_id != made_by:
        raise IncorrectKey("The key ID in the request does not identify the key that encrypted the ciphertext.")
    return made_by


async def re_encrypt(call: AwsCall) -> JsonObject:
    """Decrypt under the source key and context, encrypt under the destination's; the plaintext never leaves."""
    for name in ("SourceEncryptionAlgorithm", "DestinationEncryptionAlgorithm"):
        if call.text(name, default=SYMMETRIC) != SYMMETRIC:
            raise InvalidArgument(f"{name} must be {SYMMETRIC} for a symmetric key")
    ignore_ciphertext = call.ignores_ciphertext()
    blob = b"" if ignore_ciphertext else call.blob("CiphertextBlob", CIPHERTEXT_BYTES)
    destination = call.key_ref("DestinationKeyId")
    # the pipeline authorised the source (kms:ReEncryptFrom); the destination is authorised here
    await _authorize(call, "kms:ReEncryptTo", destination, context_field(call, "DestinationEncryptionContext"))
    if ignore_ciphertext:  # a dry run of the permissions on both keys only
        raise DryRunOperation("ReEncrypt")
    made_by = await _made_by(call, re_encrypt_source_ref(call))
    source_aad = AwsRequest(call.account, call.region, {"EncryptionContext": call.body.get("SourceEncryptionContext")})
    target_aad = AwsRequest(
        call.account, call.region, {"EncryptionContext": call.body.get("DestinationEncryptionContext")}
    )
    plaintext = await call.backend.decrypt_data_key(made_by, blob, aad=source_aad.aad(opening=True))
    data_key = await call.backend.encrypt_data_key(destination, plaintext, aad=target_aad.aad())
    return {
        "CiphertextBlob": binascii.b2a_base64(data_key.ciphertext, newline=False).decode(),
        "SourceKeyId": call.key_arn(made_by),
        "KeyId": call.key_arn(data_key.key_id),
        "SourceEncryptionAlgorithm": SYMMETRIC,
        "DestinationEncryptionAlgorithm": SYMMETRIC,
    }


async def _data_key_pair(call: AwsCall, *, with_plaintext: bool) -> JsonObject:
    """GenerateDataKeyPair(WithoutPlaintext): the private key (PKCS #8 DER) wrapped under a symmetric key."""
    _no_recipient(call)
    pair_spec = call.text("KeyPairSpec", required=True)
    pair = await call.backend.create_data_key_pair(
        call.key_ref(), pair_spec, aad=call.aad(), with_plaintext=with_plaintext
    )
    answer: JsonObject = {
        "KeyId": call.key_arn(pair.key_id),
        "KeyPairSpec": pair.pair_spec,
        "PublicKey": _b64(pair.public_key),
        "PrivateKeyCiphertextBlob": _b64(pair.private_ciphertext),
    }
    if pair.private_plaintext is not None:
        answer["PrivateKeyPlaintext"] = _b64(pair.private_plaintext)
    return answer


async def generate_data_key_pair(call: AwsCall) -> JsonObject:
    return await _data_key_pair(call, with_plaintext=True)


async def generate_data_key_pair_without_plaintext(call: AwsCall) -> JsonObject:
    return await _data_key_pair(call, with_plaintext=False)


def context_field(call: AwsRequest, name: str) -> dict[str, str]:
    context = call.body.get(name)
    return context if isinstance(context, dict) else {}


# ------------------------------------------------------------------ asymmetric and HMAC keys


async def get_public_key(call: AwsCall) -> JsonObject:
    key = present(await call.backend.describe_key(call.key_ref()))
    public = await call.backend.get_public_key(key.key_id)
    return {
        "KeyId": call.key_arn(key.key_id),
        "PublicKey": _b64(public),
        "CustomerMasterKeySpec": aws_key_spec(key.key_spec),
        "KeySpec": aws_key_spec(key.key_spec),
        "KeyUsage": key.key_usage,
        ALGORITHMS_FIELD[key.key_usage]: list(key_algorithms(key.key_spec, key.key_usage)),
    }


def _is_digest(call: AwsRequest) -> bool:
    """MessageType: RAW (the server hashes the message) or DIGEST (the message is the digest)."""
    kind = call.text("MessageType", default="RAW")
    if kind not in MESSAGE_TYPES:
        raise InvalidArgument(f"MessageType must be one of {', '.join(MESSAGE_TYPES)}")
    return kind == "DIGEST"


async def sign(call: AwsCall) -> JsonObject:
    algorithm = call.text("SigningAlgorithm", required=True)
    message = call.blob("Message", SIGN_MESSAGE_BYTES)
    signed = await call.backend.sign(call.key_ref(), message, algorithm=algorithm, digest=_is_digest(call))
    return {"KeyId": call.key_arn(signed.key_id), "Signature": _b64(signed.data), "SigningAlgorithm": algorithm}


async def verify(call: AwsCall) -> JsonObject:
    algorithm = call.text("SigningAlgorithm", required=True)
    message, signature = call.blob("Message", SIGN_MESSAGE_BYTES), call.blob("Signature", SIGNATURE_BYTES)
    key = present(await call.backend.describe_key(call.key_ref()))
    if not await call.backend.verify(key.key_id, message, signature, algorithm=algorithm, digest=_is_digest(call)):
        raise InvalidArgument("The signature is not valid for this message, key and algorithm.",
                              reason=Reason.SIGNATURE_INVALID)  # fmt: skip
    return {"KeyId": call.key_arn(key.key_id), "SignatureValid": True, "SigningAlgorithm": algorithm}


async def generate_mac(call: AwsCall) -> JsonObject:
    algorithm = call.text("MacAlgorithm", required=True)
    made = await call.backend.generate_mac(call.key_ref(), call.blob("Message", MAC_MESSAGE_BYTES), algorithm=algorithm)
    return {"KeyId": call.key_arn(made.key_id), "Mac": _b64(made.data), "MacAlgorithm": algorithm}


async def verify_mac(call: AwsCall) -> JsonObject:
    algorithm = call.text("MacAlgorithm", required=True)
    message, mac = call.blob("Message", MAC_MESSAGE_BYTES), call.blob("Mac", MAC_BYTES)
    key = present(await call.backend.describe_key(call.key_ref()))
    if not await call.backend.verify_mac(key.key_id, message, mac, algorithm=algorithm):
        raise InvalidArgument("The MAC is not valid for this message, key and algorithm.", reason=Reason.MAC_INVALID)
    return {"KeyId": call.key_arn(key.key_id), "MacValid": True, "MacAlgorithm": algorithm}


# ------------------------------------------------------------------ imported key material


async def get_parameters_for_import(call: AwsCall) -> JsonObject:
    key_id = key_id_ref(call)
    parameters = await call.backend.get_parameters_for_import(
        key_id,
        wrapping_algorithm=call.text("WrappingAlgorithm", required=True),
        wrapping_key_spec=call.text("WrappingKeySpec", required=True),
    )
    return {
        "KeyId": call.key_arn(parameters.key_id),
        "ImportToken": _b64(parameters.import_token),
        "PublicKey": _b64(parameters.public_key),
        "ParametersValidTo": parameters.valid_to.timestamp(),
    }


def _valid_to(call: AwsRequest) -> datetime | None:
    """ValidTo with ExpirationModel as AWS pairs them: KEY_MATERIAL_EXPIRES needs it, DOES_NOT_EXPIRE forbids it."""
    value = call.body.get("ValidTo")
    model = call.text("ExpirationModel", default="KEY_MATERIAL_EXPIRES" if value is not None else DOES_NOT_EXPIRE)
    if model not in (DOES_NOT_EXPIRE, "KEY_MATERIAL_EXPIRES") or (value is None) != (model == DOES_NOT_EXPIRE):
        raise InvalidArgument(
            f"ValidTo is required with ExpirationModel KEY_MATERIAL_EXPIRES, and absent with {DOES_NOT_EXPIRE}"
        )
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < MAX_EPOCH_SECONDS:
        raise InvalidArgument("ValidTo must be a timestamp (seconds since the epoch)")
    return datetime.fromtimestamp(value, UTC)


def _no_key_material_id(call: AwsRequest) -> None:
    """AWS names each material of a key (KeyMaterialId) since keys of imported material rotate; here a key keeps
    one material and names none, so an id names nothing here (refused: ignoring it could act on another)."""
    if call.body.get("KeyMaterialId") is not None:
        raise InvalidArgument("KeyMaterialId: this server keeps one material per key and names none")


async def import_key_material(call: AwsCall) -> JsonObject:
    _no_key_material_id(call)
    key_ref = key_id_ref(call)
    import_type = call.text("ImportType")
    if import_type and import_type not in IMPORT_TYPES:
        raise InvalidArgument(f"ImportType must be one of {', '.join(IMPORT_TYPES)}")
    # NEW_KEY_MATERIAL for a key that has its material: AWS's material for an on-demand rotation, staged as
    # PENDING_ROTATION until RotateKeyOnDemand (for a key awaiting its first material it is that first material)
    await call.backend.import_key_material(
        key_ref,
        call.blob("ImportToken", IMPORT_BLOB_BYTES),
        call.blob("EncryptedKeyMaterial", IMPORT_BLOB_BYTES),
        valid_to=_valid_to(call),
        new_material=import_type == NEW_KEY_MATERIAL,
    )
    return {}


async def delete_imported_key_material(call: AwsCall) -> JsonObject:
    _no_key_material_id(call)
    await call.backend.delete_imported_key_material(key_id_ref(call))
    return {}


# ------------------------------------------------------------------ key policies


def _check_policy(call: AwsRequest, document: str, key_id: str, names: tuple[str, ...]) -> None:
    """AWS's character set, the grammar, then AWS's lockout safety check unless BypassPolicyLockoutSafetyCheck."""
    if not POLICY_TEXT.fullmatch(document):
        raise InvalidArgument(
            "1 validation error detected: Value at 'policy' failed to satisfy constraint: Member must "
            "satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+"
        )
    try:
        policies.parse_policy(document)
    except policies.PolicyError as error:
        raise MalformedPolicyDocument(str(error)) from None
    bypass = call.body.get("BypassPolicyLockoutSafetyCheck", False)
    if not isinstance(bypass, bool):
        raise InvalidArgument("BypassPolicyLockoutSafetyCheck must be a boolean")
    if bypass:
        return
    if call.caller is None or not call.caller.keeps_policy_control(document, key_id, names, call.account):
        raise MalformedPolicyDocument(
            "The new key policy will not allow you to update the key policy in the future "
            "(set BypassPolicyLockoutSafetyCheck to apply it anyway)."
        )


def _policy_name(call: AwsRequest) -> None:
    name = call.text("PolicyName", default=KEY_POLICY_NAME)
    if name != KEY_POLICY_NAME:
        raise NotFound(f"No such policy: {name!r}; a key has one policy, named {KEY_POLICY_NAME!r}")


async def put_key_policy(call: AwsCall) -> JsonObject:
    _policy_name(call)
    document = call.text("Policy", required=True, max_chars=policies.grammar.MAX_POLICY_CHARS)
    key = present(await call.backend.describe_key(key_id_ref(call)))
    _check_policy(call, document, key.key_id, (key.key_id, key.alias, *key.aliases))
    await call.backend.put_key_policy(key.key_id, document)
    return {}


async def get_key_policy(call: AwsCall) -> JsonObject:
    _policy_name(call)
    document = await call.backend.get_key_policy(present(await call.backend.describe_key(key_id_ref(call))).key_id)
    return {"Policy": document or policies.default_policy(call.account), "PolicyName": KEY_POLICY_NAME}


async def list_key_policies(call: AwsCall) -> JsonObject:
    present(await call.backend.describe_key(key_id_ref(call)))
    return paged([KEY_POLICY_NAME], call, "PolicyNames", limits=KEY_POLICIES_LIMIT, default_limit=100)


# ------------------------------------------------------------------ grants


def _principal_field(call: AwsRequest, name: str, *, required: bool = False) -> str:
    value = call.text(name, required=required, max_chars=MAX_KEY_REF_CHARS)
    if (value or required) and not PRINCIPAL_ARN.fullmatch(value):  # a required "" names no principal
        raise InvalidArgument(f"{name} must be an IAM principal ARN (arn:aws:iam::<account>:user/<name>, role, root)")
    return value


def _context_constraints(call: AwsRequest) -> tuple[dict[str, str] | None, dict[str, str] | None]:
    constraints = call.body.get("Constraints") or {}
    names = ("EncryptionContextEquals", "EncryptionContextSubset")
    if not isinstance(constraints, dict) or not set(constraints) <= set(names):
        raise InvalidArgument("Constraints holds EncryptionContextEquals or EncryptionContextSubset")
    found: list[dict[str, str] | None] = []
    for name in names:
        value = constraints.get(name)
        if value is not None and not (isinstance(value, dict) and all(isinstance(v, str) for v in value.values())):
            raise InvalidArgument(f"Constraints.{name} must be a map of strings to strings")
        if value is not None and (
            len(value) > GRANT_CONSTRAINT_PAIRS
            or any(len(k) > GRANT_CONSTRAINT_CHARS or len(v) > GRANT_CONSTRAINT_CHARS for k, v in value.items())
        ):
            raise InvalidArgument(f"Constraints.{name} holds at most {GRANT_CONSTRAINT_PAIRS} pairs of at most "
                                  f"{GRANT_CONSTRAINT_CHARS} characters (AWS's limit)")  # fmt: skip
        found.append(value)
    if found[0] is not None and found[1] is not None:
        raise InvalidArgument("Constraints takes EncryptionContextEquals or EncryptionContextSubset, not both")
    return found[0], found[1]


def _grant_operations(call: AwsRequest, key: KeyMetadata) -> tuple[str, ...]:
    operations = call.body.get("Operations")
    if not isinstance(operations, list) or not operations or not all(isinstance(o, str) for o in operations):
        raise InvalidArgument("Operations must be a non-empty list of grant operations")
    unknown = sorted(set(operations) - set(policies.GRANT_OPERATIONS))
    if unknown:
        raise InvalidArgument(f"grant operations must be among {', '.join(policies.GRANT_OPERATIONS)}; got {unknown}")
    unfit = sorted(set(operations) - policies.grant_operations_for(key.key_spec, key.key_usage))
    if unfit:
        raise InvalidArgument(f"a grant on a {aws_key_spec(key.key_spec)} key for {key.key_usage} cannot allow "
                              f"{', '.join(unfit)}")  # fmt: skip
    return tuple(dict.fromkeys(operations))


def _no_service_principal(call: AwsRequest, *names: str) -> None:
    """AWS's service-principal grants and filters: none here (callers are the principals file's users); refused,
    not ignored (an ignored filter would list every grant, an ignored RetiringServicePrincipal make another grant)."""
    for name in names:
        if call.body.get(name) is not None:
            raise InvalidArgument(f"{name}: this server has no service principals, only the principals file's users")


async def create_grant(call: AwsCall) -> JsonObject:
    _no_service_principal(call, "GranteeServicePrincipal", "RetiringServicePrincipal")
    key = present(await call.backend.describe_key(key_id_ref(call)))
    equals, subset = _context_constraints(call)
    if (equals is not None or subset is not None) and key.key_spec != SYMMETRIC_KEY_SPEC:
        # AWS's rule: this key's operations take no encryption context, so a constraint on it would bind nothing
        # (an RSA Decrypt grant "for app=a" would open every ciphertext of the key to a caller claiming app=a)
        raise InvalidArgument(f"a grant on a {aws_key_spec(key.key_spec)} key cannot have an encryption context "
                              f"constraint: only {SYMMETRIC} keys' operations take an encryption context")  # fmt: skip
    name = call.text("Name", max_chars=GRANT_NAME_CHARS)
    if name and not GRANT_NAME_PATTERN.fullmatch(name):
        raise InvalidArgument("Name must match ^[a-zA-Z0-9:/_-]+$")
    terms = GrantTerms(
        grantee=_principal_field(call, "GranteePrincipal", required=True),
        operations=_grant_operations(call, key),
        retiring=_principal_field(call, "RetiringPrincipal"),
        name=name,
        context_equals=equals,
        context_subset=subset,
        issuing_account=f"arn:aws:iam::{call.account}:root",
    )
    if call.caller is not None:  # allowed through a grant (not its key list or the policy)? then by one that covers it
        await call.caller.authorize_action(
            policies.policy_action("create-grant"),
            call.backend,
            key.key_id,
            account=call.account,
            label="CreateGrant",
            grant_filter=lambda parent: policies.grant_may_create(parent, terms),
        )
    if call.dry_run():
        raise DryRunOperation("CreateGrant")
    grant = await call.backend.create_grant(key.key_id, terms)
    return {"GrantToken": grant.token, "GrantId": grant.grant_id}


def _grant_entry(call: AwsRequest, grant: Grant) -> JsonObject:
    terms = grant.terms
    entry: JsonObject = {
        "KeyId": call.key_arn(grant.key_id),
        "GrantId": grant.grant_id,
        "CreationDate": grant.created_at.timestamp(),
        "GranteePrincipal": terms.grantee,
        "IssuingAccount": terms.issuing_account,
        "Operations": list(terms.operations),
    }
    if terms.name:  # AWS's GrantNameType is 1-256 characters: an unnamed grant has no Name
        entry["Name"] = terms.name
    if terms.retiring:
        entry["RetiringPrincipal"] = terms.retiring
    if terms.context_equals is not None:
        entry["Constraints"] = {"EncryptionContextEquals": dict(terms.context_equals)}
    if terms.context_subset is not None:
        entry["Constraints"] = {"EncryptionContextSubset": dict(terms.context_subset)}
    return entry


async def list_grants(call: AwsCall) -> JsonObject:
    _no_service_principal(call, "GranteeServicePrincipal")
    grant_id, grantee = call.text("GrantId"), _principal_field(call, "GranteePrincipal")
    grants = await call.backend.list_grants(present(await call.backend.describe_key(key_id_ref(call))).key_id)
    chosen = [g for g in grants if grant_id in ("", g.grant_id) and grantee in ("", g.terms.grantee)]
    return paged([_grant_entry(call, grant) for grant in chosen], call, "Grants")


def _caller_arn(call: AwsRequest) -> str:
    if call.caller is None:
        raise AccessDenied("this operation needs a signed-in principal")
    return f"arn:aws:iam::{call.account}:user/{call.caller.name}"


async def list_retirable_grants(call: AwsCall) -> JsonObject:
    """A principal lists the grants it may retire; another's only a principal of every key may list."""
    _no_service_principal(call, "RetiringServicePrincipal")
    retiring = _principal_field(call, "RetiringPrincipal", required=True)
    if retiring != _caller_arn(call) and not (call.caller is not None and call.caller.all_keys):
        raise AccessDenied(f"only {retiring} or a principal of every key may list the grants {retiring} may retire")
    grants = await call.backend.list_grants(retiring=retiring)
    here = [grant for grant in grants if await of_region(call, grant.key_id)]  # the grants of this region's keys
    return paged([_grant_entry(call, grant) for grant in here], call, "Grants")


async def revoke_grant(call: AwsCall) -> JsonObject:
    key_ref, grant_id = key_id_ref(call), call.text("GrantId", required=True)
    if call.dry_run():
        await call.backend.find_grant(key_id=key_ref, grant_id=grant_id)  # NotFoundException, as the call would
        raise DryRunOperation("RevokeGrant")
    await call.backend.delete_grant(key_ref, grant_id)
    return {}


async def retire_grant(call: AwsCall) -> JsonObject:
    """By GrantToken or KeyId+GrantId; by its retiring principal, a grantee given RetireGrant, or as policy allows."""
    token = call.text("GrantToken")
    if token:
        grant = await call.backend.find_grant(token=token)
    else:
        key_ref = key_id_ref(call)
        try:
            grant = await call.backend.find_grant(key_id=key_ref, grant_id=call.text("GrantId", required=True))
        except NotFound:  # no key, or no such grant: said only to who may retire grants of the key
            await _authorize(call, "kms:RetireGrant", key_ref)
            raise
    caller, terms = _caller_arn(call), grant.terms
    if caller != terms.retiring and not (caller == terms.grantee and "RetireGrant" in terms.operations):
        await _authorize(call, "kms:RetireGrant", grant.key_id)
    if call.dry_run():
        raise DryRunOperation("RetireGrant")
    await call.backend.delete_grant(grant.key_id, grant.grant_id)
    return {}


# ------------------------------------------------------------------ aliases and tags


def alias_name(call: AwsRequest) -> str:
    """``alias/x`` -> keystore alias ``x``; AWS reserves ``alias/aws/``."""
    name = call.text("AliasName", required=True)
    if not name.startswith(ALIAS_PREFIX) or len(name) <= len(ALIAS_PREFIX):
        raise InvalidArgument("AliasName must begin with 'alias/' followed by a name")
    if name.startswith(RESERVED_ALIAS_PREFIX):
        raise NotAuthorized("alias names beginning with 'alias/aws/' are reserved for AWS managed keys")
    alias = name.removeprefix(ALIAS_PREFIX)
    if not ALIAS_NAME_PATTERN.fullmatch(alias):
        raise InvalidArgument(
            "1 validation error detected: Value at 'aliasName' failed to satisfy constraint: "
            "Member must satisfy regular expression pattern: ^alias/[a-zA-Z0-9/_-]+$ (and at most 256 characters)"
        )
    return alias


def new_alias_name(call: AwsRequest) -> str:
    """An alias this wire may create or point: none under a keystore-reserved prefix (rules.RESERVED_ALIAS_PREFIXES)."""
    alias = alias_name(call)
    prefix = rules.reserved_alias_prefix(alias)  # gcp/: alias_name refused alias/aws/ already
    if prefix is not None:
        owner = rules.RESERVED_ALIAS_PREFIXES[prefix]
        raise NotAuthorized(f"alias names beginning with '{ALIAS_PREFIX}{prefix}' are reserved for {owner}")
    return alias


async def create_alias(call: AwsCall) -> JsonObject:
    key = present(await call.backend.describe_key(key_id_ref(call, "TargetKeyId")))
    await call.backend.create_alias(key.key_id, new_alias_name(call))
    return {}


async def update_alias(call: AwsCall) -> JsonObject:
    """The pipeline authorised the alias's current key; the new target is authorised here (kms:UpdateAlias)."""
    alias, target = new_alias_name(call), key_id_ref(call, "TargetKeyId")
    await _authorize(call, "kms:UpdateAlias", target)
    current, new = present(await call.backend.describe_key(alias)), present(await call.backend.describe_key(target))
    if (key_type(current.key_spec), current.key_usage) != (key_type(new.key_spec), new.key_usage):
        raise InvalidArgument(f"alias/{alias} names a {key_type(current.key_spec)} key for {current.key_usage}; "
                              f"it can move only to a key of that type and usage, not to a "
                              f"{key_type(new.key_spec)} key for {new.key_usage}")  # fmt: skip
    await call.backend.update_alias(alias, new.key_id)
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
            listed = await regional(call.backend).list_keys(limit=LIST_KEYS_LIMIT[1], marker=marker, region=call.region)
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
    await _authorize_tag_change(call, tags)
    await call.backend.tag_key(call.key_ref(), tags)
    return {}


async def _authorize_tag_change(call: AwsCall, tag_keys: Iterable[str]) -> None:
    if call.caller is None:
        raise AccessDenied("this operation needs a signed-in principal")
    await call.caller.authorize_tag_change(call.backend, call.key_ref(), tag_keys, account=call.account)


async def untag_resource(call: AwsCall) -> JsonObject:
    tag_keys = call.body.get("TagKeys")
    if not isinstance(tag_keys, list) or not tag_keys:
        raise InvalidArgument("TagKeys must be a non-empty list of strings")
    tag_keys = [inputs.text(tag_key, "TagKeys[]", max_chars=MAX_TEXT_CHARS) for tag_key in tag_keys]
    await _authorize_tag_change(call, tag_keys)
    await call.backend.untag_key(call.key_ref(), tag_keys)
    return {}


async def list_resource_tags(call: AwsCall) -> JsonObject:
    tags = await call.backend.list_tags(call.key_ref())
    return paged([{"TagKey": k, "TagValue": v} for k, v in sorted(tags.items())], call, "Tags")


# ------------------------------------------------------------------ the table


Handler = Callable[[AwsCall], Awaitable[JsonObject]]


def with_grant_tokens(handler: Handler) -> Handler:
    """An operation that takes GrantTokens: each must name a grant this server issued (InvalidGrantTokenException).

    Grants here are effective as soon as CreateGrant answers, so a valid token adds no permission.
    """

    def checked(call: AwsCall) -> Awaitable[JsonObject]:
        tokens = call.body.get("GrantTokens")
        if tokens is None:  # most calls: the handler's own coroutine, none around it (a plain function)
            return handler(call)
        return _with_checked_tokens(call, tokens, handler)

    return checked


async def _with_checked_tokens(call: AwsCall, tokens: object, handler: Handler) -> JsonObject:
    if not isinstance(tokens, list) or len(tokens) > MAX_GRANT_TOKENS:
        raise InvalidArgument(f"GrantTokens must be a list of at most {MAX_GRANT_TOKENS} grant tokens")
    for token in tokens:
        try:
            await call.backend.find_grant(token=inputs.text(token, "GrantTokens[]", max_chars=MAX_TEXT_CHARS))
        except NotFound:
            raise InvalidGrantToken("The grant token is not valid.") from None
    return await handler(call)


def with_dry_run(name: str, handler: Handler) -> Handler:
    """An operation that takes DryRun, as on AWS: checked as if made, then refused with DryRunOperationException.

    The handlers that write (the grant operations) stop before their write; the others only compute, and what they
    computed is dropped.
    """

    def checked(call: AwsCall) -> Awaitable[JsonObject]:
        if call.dry_run():
            return _dry_run(name, call, handler)
        return handler(call)  # as with_grant_tokens': no coroutine of its own around the handler's

    return checked


async def _dry_run(name: str, call: AwsCall, handler: Handler) -> JsonObject:
    await handler(call)
    raise DryRunOperation(name)


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
    "DescribeKey": AwsOperation("describe-key", KeyScope.KEY, with_grant_tokens(describe_key)),
    "ListKeys": AwsOperation("list-keys", KeyScope.ACCOUNT, list_keys),
    "UpdateKeyDescription": AwsOperation("update-key-description", KeyScope.KEY, update_key_description, key_id_ref),
    "EnableKey": AwsOperation("enable-key", KeyScope.KEY, enable_key, key_id_ref),
    "DisableKey": AwsOperation("disable-key", KeyScope.KEY, disable_key, key_id_ref),
    "ScheduleKeyDeletion": AwsOperation("schedule-key-deletion", KeyScope.KEY, schedule_key_deletion, key_id_ref),
    "CancelKeyDeletion": AwsOperation("cancel-key-deletion", KeyScope.KEY, cancel_key_deletion, key_id_ref),
    "EnableKeyRotation": AwsOperation("enable-key-rotation", KeyScope.KEY, enable_key_rotation, key_id_ref),
    "DisableKeyRotation": AwsOperation("disable-key-rotation", KeyScope.KEY, disable_key_rotation, key_id_ref),
    "GetKeyRotationStatus": AwsOperation("get-key-rotation-status", KeyScope.KEY, get_key_rotation_status, key_id_ref),
    "ListKeyRotations": AwsOperation("get-key-rotation-status", KeyScope.KEY, list_key_rotations, key_id_ref),
    "RotateKeyOnDemand": AwsOperation("rotate-on-demand", KeyScope.KEY, rotate_key_on_demand, key_id_ref),
    "GenerateRandom": AwsOperation("gen-random", KeyScope.NONE, generate_random),
    "GenerateDataKey": AwsOperation(
        "create-datakey", KeyScope.KEY, with_dry_run("GenerateDataKey", with_grant_tokens(generate_data_key))
    ),
    "GenerateDataKeyWithoutPlaintext": AwsOperation(
        "create-datakey-without-plaintext",
        KeyScope.KEY,
        with_dry_run("GenerateDataKeyWithoutPlaintext", with_grant_tokens(generate_data_key_without_plaintext)),
    ),
    "Encrypt": AwsOperation("encrypt-datakey", KeyScope.KEY, with_dry_run("Encrypt", with_grant_tokens(encrypt))),
    "Decrypt": AwsOperation(
        "decrypt-datakey", KeyScope.KEY, with_dry_run("Decrypt", with_grant_tokens(decrypt)), key_ref=decrypt_key_ref
    ),
    "GenerateDataKeyPair": AwsOperation(
        "create-datakey-pair",
        KeyScope.KEY,
        with_dry_run("GenerateDataKeyPair", with_grant_tokens(generate_data_key_pair)),
    ),
    "GenerateDataKeyPairWithoutPlaintext": AwsOperation(
        "create-datakey-pair-without-plaintext",
        KeyScope.KEY,
        with_dry_run(
            "GenerateDataKeyPairWithoutPlaintext", with_grant_tokens(generate_data_key_pair_without_plaintext)
        ),
    ),
    "GetPublicKey": AwsOperation("get-publickey", KeyScope.KEY, with_grant_tokens(get_public_key)),
    "Sign": AwsOperation("sign", KeyScope.KEY, with_dry_run("Sign", with_grant_tokens(sign))),
    "Verify": AwsOperation("verify", KeyScope.KEY, with_dry_run("Verify", with_grant_tokens(verify))),
    "GenerateMac": AwsOperation(
        "generate-mac", KeyScope.KEY, with_dry_run("GenerateMac", with_grant_tokens(generate_mac))
    ),
    "VerifyMac": AwsOperation("verify-mac", KeyScope.KEY, with_dry_run("VerifyMac", with_grant_tokens(verify_mac))),
    "GetParametersForImport": AwsOperation(
        "get-parameters-for-import", KeyScope.KEY, get_parameters_for_import, key_id_ref
    ),
    "ImportKeyMaterial": AwsOperation("import-key-material", KeyScope.KEY, import_key_material, key_id_ref),
    "DeleteImportedKeyMaterial": AwsOperation(
        "delete-imported-key-material", KeyScope.KEY, delete_imported_key_material, key_id_ref
    ),
    "ReEncrypt": AwsOperation(
        "re-encrypt",
        KeyScope.KEY,
        with_dry_run("ReEncrypt", with_grant_tokens(re_encrypt)),
        key_ref=re_encrypt_source_ref,
    ),
    "CreateAlias": AwsOperation("create-alias", KeyScope.KEY, create_alias, lambda c: key_id_ref(c, "TargetKeyId")),
    "UpdateAlias": AwsOperation("update-alias", KeyScope.KEY, update_alias, key_ref=alias_name),
    "DeleteAlias": AwsOperation("delete-alias", KeyScope.KEY, delete_alias, key_ref=alias_name),
    "ListAliases": AwsOperation("list-aliases", KeyScope.KEY, list_aliases, key_optional=True),
    "TagResource": AwsOperation("batch-key-tags", KeyScope.KEY, tag_resource, key_id_ref),
    "UntagResource": AwsOperation("delete-key-tag", KeyScope.KEY, untag_resource, key_id_ref),
    "ListResourceTags": AwsOperation("list-key-tags", KeyScope.KEY, list_resource_tags, key_id_ref),
    "PutKeyPolicy": AwsOperation("put-key-policy", KeyScope.KEY, put_key_policy, key_id_ref),
    "GetKeyPolicy": AwsOperation("get-key-policy", KeyScope.KEY, get_key_policy, key_id_ref),
    "ListKeyPolicies": AwsOperation("list-key-policies", KeyScope.KEY, list_key_policies, key_id_ref),
    "CreateGrant": AwsOperation(
        "create-grant", KeyScope.KEY, with_dry_run("CreateGrant", with_grant_tokens(create_grant)), key_id_ref
    ),
    "ListGrants": AwsOperation("list-grants", KeyScope.KEY, list_grants, key_id_ref),
    "RevokeGrant": AwsOperation("revoke-grant", KeyScope.KEY, with_dry_run("RevokeGrant", revoke_grant), key_id_ref),
    # authorised by their handlers: a retiring principal (or grantee) acts on grants no key list or policy names
    "ListRetirableGrants": AwsOperation("list-retirable-grants", KeyScope.NONE, list_retirable_grants),
    "RetireGrant": AwsOperation(
        "retire-grant", KeyScope.NONE, with_dry_run("RetireGrant", with_grant_tokens(retire_grant))
    ),
}
