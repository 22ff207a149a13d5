"""Input limits and the key state machine of the keystore, with the precise reason of each refusal."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kubekms.backend import (
    KEY_SPECS,
    ORIGIN_EXTERNAL,
    ORIGIN_KMS,
    SYMMETRIC_KEY_SPEC,
    WRAPPING_ALGORITHMS,
    WRAPPING_KEY_SPECS,
    GrantTerms,
    KeyState,
    check_encryption_context,
    key_usages,
)
from kubekms.errors import Disabled, InvalidArgument, InvalidState, LimitExceeded, NotFound, PendingDeletion, Reason
from kubekms.naming import has_control_character, is_alias, is_clean_text

MAX_DESCRIPTION = 255
CLOUD_KMS_ALIAS_PREFIX = "gcp/"  # gcp/<location>/<ring>/<key>/<version>: a Cloud KMS key version's keystore key
AWS_MANAGED_ALIAS_PREFIX = "aws/"  # the keystore form of the AWS wire's alias/aws/
# Aliases no client makes, on any wire: only the Cloud KMS API makes gcp/ ones (its versions' keys), and the AWS
# wire shows aws/ ones as alias/aws/..., AWS's managed keys' aliases, which AWS applications trust by name.
RESERVED_ALIAS_PREFIXES = {
    CLOUD_KMS_ALIAS_PREFIX: "Cloud KMS API key versions",
    AWS_MANAGED_ALIAS_PREFIX: "AWS managed keys",
}
PENDING_DAYS = (7, 1096)
ROTATION_DAYS = (1, 3650)
ON_DEMAND_ROTATIONS = 25  # per key, as AWS's RotateKeyOnDemand (automatic rotations do not count)
DEFAULT_ROTATION_DAYS = 365
DATA_KEY_BYTES = (1, 1024)
ENCRYPT_PLAINTEXT_BYTES = (1, 4096)  # AWS Encrypt's limit; the v1.0 wire is stricter
RANDOM_BYTES = (1, 1024)
MAX_AAD_BYTES = 8192
MAX_TAGS = 50
MAX_ALIASES_PER_KEY = 50  # AWS's quota
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 255
# the operator's ownership tags (kubekms.io/owner-uid): it deletes the keys a KMSKey's tag names, so changing
# one on an existing key is authorised as a deletion too (PrincipalGrant.authorize_tag_change)
OWNERSHIP_TAG_PREFIX = "kubekms.io/"
RESERVED_TAG_PREFIX = "aws:"  # AWS's own tags (TagException), on every wire: a key tagged here is readable on all
LIST_LIMIT = (1, 1000)
KEY_POLICY_NAME = "default"  # AWS: every key has exactly one policy, named "default"
MAX_KEY_POLICY_CHARS = 32768  # AWS's limit on a key policy document
MAX_GRANTS_PER_KEY = 50_000  # AWS's quota
MAX_GRANT_TEXT = 8192  # grantee, retiring principal, name, context keys and values
IMPORT_TOKEN_SECONDS = 86400  # AWS: the wrapping key and import token are valid for 24 hours
MAX_MATERIAL_VALID_SECONDS = 365 * 86400  # AWS: ValidTo at most 365 days ahead


def check_text(value: str, what: str, reason: Reason = Reason.INVALID_ARGUMENT) -> None:
    """Stored text must encode to UTF-8: a lone surrogate (from bad input) is refused, not a database error."""
    if not is_clean_text(value):
        raise InvalidArgument(f"{what} is not valid Unicode text (it holds a lone surrogate)", reason=reason)


def check_alias(alias: str) -> None:
    if not is_alias(alias):
        raise InvalidArgument(
            f"invalid alias {alias!r}: 1-255 of [a-zA-Z0-9:/_-], not ending in /default, not a key id",
            reason=Reason.ALIAS_INVALID,
        )


def check_alias_count(key_id: str, aliases: int) -> None:
    """Before one more alias names the key, which holds ``aliases`` already."""
    if aliases >= MAX_ALIASES_PER_KEY:
        raise LimitExceeded(f"key {key_id} already has {aliases} aliases, the limit")


def reserved_alias_prefix(alias: str) -> str | None:
    """The reserved prefix ``alias`` begins with (see RESERVED_ALIAS_PREFIXES), None when a client may make it."""
    return next((prefix for prefix in RESERVED_ALIAS_PREFIXES if alias.startswith(prefix)), None)


def is_reserved_alias(alias: str) -> bool:
    return reserved_alias_prefix(alias) is not None


def check_not_reserved_alias(alias: str) -> str:
    """An alias a client may create (v1.0 wire, console): none under a reserved prefix."""
    prefix = reserved_alias_prefix(alias)
    if prefix is not None:
        raise InvalidArgument(
            f"aliases beginning with {prefix!r} are reserved for {RESERVED_ALIAS_PREFIXES[prefix]}",
            reason=Reason.ALIAS_INVALID,
        )
    return alias


def check_key_policy(name: str, document: str) -> None:
    if name != KEY_POLICY_NAME:
        raise InvalidArgument(f"a key has one policy, named {KEY_POLICY_NAME!r}; got {name!r}")
    if not isinstance(document, str) or not 1 <= len(document) <= MAX_KEY_POLICY_CHARS:
        raise InvalidArgument(f"a key policy is 1-{MAX_KEY_POLICY_CHARS} characters")
    check_text(document, "the key policy")


def check_grant(terms: GrantTerms) -> None:
    """Bounded text only: the AWS wire checks the grant's meaning (operations, principals) before."""
    contexts = (terms.context_equals or {}, terms.context_subset or {})
    for context in contexts:
        check_encryption_context(context)
    texts = [terms.grantee, terms.retiring, terms.name, terms.issuing_account, *terms.operations]
    texts += [text for context in contexts for pair in context.items() for text in pair]
    if (
        not terms.grantee
        or not terms.operations
        or not all(isinstance(t, str) and len(t) <= MAX_GRANT_TEXT for t in texts)
    ):
        raise InvalidArgument(f"a grant names a grantee and operations, each text at most {MAX_GRANT_TEXT} characters")
    for text in texts:
        check_text(text, "a grant's text")


def check_origin(origin: str, key_spec: str) -> None:
    if origin not in (ORIGIN_KMS, ORIGIN_EXTERNAL):
        raise InvalidArgument(f"origin is {ORIGIN_KMS} or {ORIGIN_EXTERNAL}, not {origin!r}")
    if origin == ORIGIN_EXTERNAL and key_spec != SYMMETRIC_KEY_SPEC:
        raise InvalidArgument(f"imported key material is offered for {SYMMETRIC_KEY_SPEC} keys only, not {key_spec}",
                              reason=Reason.UNSUPPORTED_OPERATION)  # fmt: skip


def check_wrapping(algorithm: str, key_spec: str) -> None:
    if algorithm not in WRAPPING_ALGORITHMS:
        raise InvalidArgument(f"the wrapping algorithm is one of {', '.join(WRAPPING_ALGORITHMS)}, not {algorithm!r}")
    if key_spec not in WRAPPING_KEY_SPECS:
        raise InvalidArgument(f"the wrapping key spec is one of {', '.join(WRAPPING_KEY_SPECS)}, not {key_spec!r}")


def check_material_expiry(valid_to: float | None, now: float) -> None:
    if valid_to is not None and not now < valid_to <= now + MAX_MATERIAL_VALID_SECONDS:
        raise InvalidArgument("ValidTo must be in the future, at most 365 days ahead")


def check_description(description: str) -> None:
    if len(description) > MAX_DESCRIPTION:
        raise InvalidArgument(
            f"key description longer than {MAX_DESCRIPTION} characters", reason=Reason.DESCRIPTION_INVALID
        )
    check_text(description, "the key description", Reason.DESCRIPTION_INVALID)


def check_key_spec(key_spec: str, key_usage: str) -> None:
    if key_spec not in KEY_SPECS:
        raise InvalidArgument(f"unsupported key_spec {key_spec!r}; supported: {', '.join(KEY_SPECS)}")
    if key_usage not in key_usages(key_spec):
        raise InvalidArgument(
            f"key_spec {key_spec} takes key_usage {' or '.join(key_usages(key_spec))}, not {key_usage!r}",
            reason=Reason.KEY_USAGE_INVALID,
        )


def require_key_type(key_id: str, key_spec: str, key_usage: str, *, specs: tuple[str, ...], usage: str) -> None:
    """An operation of one key type and usage refuses every other (InvalidKeyUsageException on AWS)."""
    if key_spec not in specs or key_usage != usage:
        raise InvalidArgument(
            f"key {key_id} is a {key_spec} key for {key_usage}; this operation needs a {usage} key"
            f" of spec {' or '.join(specs)}",
            reason=Reason.KEY_USAGE_INVALID,
        )


def require_rotatable(key_id: str, key_spec: str, origin: str) -> None:
    """Only symmetric keys of the KMS's own material rotate (AWS: UnsupportedOperationException for the others)."""
    if key_spec != SYMMETRIC_KEY_SPEC or origin != ORIGIN_KMS:
        raise InvalidArgument(
            f"key {key_id} is a {key_spec} key of origin {origin}; only {SYMMETRIC_KEY_SPEC} keys of origin"
            f" {ORIGIN_KMS} rotate",
            reason=Reason.UNSUPPORTED_OPERATION,
        )


def require_importable(key_id: str, key_spec: str, origin: str, state: KeyState) -> None:
    """Key material is imported into (and deleted from) live symmetric keys of origin external only."""
    if origin != ORIGIN_EXTERNAL:
        raise InvalidArgument(f"key {key_id} is of origin {origin}: it takes no imported material",
                              reason=Reason.UNSUPPORTED_OPERATION)  # fmt: skip
    require_manageable(key_id, state)


def check_range(name: str, value: int, bounds: tuple[int, int], reason: Reason = Reason.INVALID_ARGUMENT) -> None:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgument(f"{name} must be an integer from {low} to {high}, got {value!r}", reason=reason)


def check_data_key_length(length: int) -> None:
    check_range("data key length (bytes)", length, DATA_KEY_BYTES, reason=Reason.DATA_KEY_LENGTH_INVALID)


@dataclass(frozen=True)
class SealLimits:
    """The most plaintext (Encrypt) and AAD (Encrypt and Decrypt) one seal takes: the caller's wire says its own."""

    plaintext: int
    aad: int


SEAL_LIMITS = SealLimits(plaintext=ENCRYPT_PLAINTEXT_BYTES[1], aad=MAX_AAD_BYTES)  # every wire but Cloud KMS's


def check_aad(aad: bytes, limit: int = MAX_AAD_BYTES) -> None:
    if len(aad) > limit:
        raise InvalidArgument(f"additional authenticated data longer than {limit} bytes", reason=Reason.AAD_INVALID)


def check_tags(tags: Mapping[str, str], existing: int = 0) -> None:
    if existing + len(tags) > MAX_TAGS:
        raise InvalidArgument(f"a key holds at most {MAX_TAGS} tags", reason=Reason.TAG_COUNT_EXCEEDED)
    for tag_key, tag_value in tags.items():
        check_tag_key(tag_key)
        if not isinstance(tag_value, str) or len(tag_value) > MAX_TAG_VALUE:
            raise InvalidArgument(
                f"tag {tag_key!r}: values are at most {MAX_TAG_VALUE} characters", reason=Reason.TAG_VALUE_INVALID
            )
        check_text(tag_value, f"the value of tag {tag_key!r}", Reason.TAG_VALUE_INVALID)
        if has_control_character(tag_value):
            raise InvalidArgument(
                f"tag {tag_key!r}: values cannot hold control characters", reason=Reason.TAG_VALUE_INVALID
            )


def check_tag_key(tag_key: str) -> None:
    """A tag key one may set: 1-128 characters, no control character, not under ``aws:``."""
    check_removable_tag_key(tag_key)
    if has_control_character(tag_key):
        raise InvalidArgument(
            f"tag keys cannot hold control characters, got {tag_key!r}", reason=Reason.TAG_KEY_INVALID
        )


def is_ownership_tag(tag_key: str) -> bool:
    """A tag under ``kubekms.io/``, in any case (as ``aws:`` is reserved in any case)."""
    return tag_key[: len(OWNERSHIP_TAG_PREFIX)].lower() == OWNERSHIP_TAG_PREFIX


def check_removable_tag_key(tag_key: str) -> None:
    """A tag key one may remove: 1-128 characters, not under ``aws:`` (AWS's UntagResource refuses those).

    Control characters are allowed: keystores written before that setting rule hold such tags, and their
    owners must be able to remove them.
    """
    if not isinstance(tag_key, str) or not 1 <= len(tag_key) <= MAX_TAG_KEY:
        raise InvalidArgument(
            f"tag keys are 1-{MAX_TAG_KEY} characters, got {tag_key!r}", reason=Reason.TAG_KEY_INVALID
        )
    check_text(tag_key, "a tag key", Reason.TAG_KEY_INVALID)
    if tag_key[: len(RESERVED_TAG_PREFIX)].lower() == RESERVED_TAG_PREFIX:
        raise InvalidArgument(
            f"tag keys beginning with {RESERVED_TAG_PREFIX!r} (any case) are reserved, got {tag_key!r}",
            reason=Reason.TAG_KEY_RESERVED,
        )


def require_usable(key_id: str, state: KeyState) -> None:
    """A key must be enabled for any cryptographic operation."""
    if state is KeyState.ENABLED:
        return
    if state is KeyState.DISABLED:
        raise Disabled(f"key {key_id} is disabled")
    if state is KeyState.PENDING_DELETION:
        raise PendingDeletion(f"key {key_id} is pending deletion and cannot be used")
    if state is KeyState.DESTROYED:
        raise NotFound(f"key {key_id} was deleted; its material is destroyed")
    raise InvalidState(f"key {key_id} is not enabled (state {state.name})")


def require_manageable(key_id: str, state: KeyState) -> None:
    """Settings (rotation, description, aliases, tags) change only on live keys."""
    if state is KeyState.PENDING_DELETION:
        raise PendingDeletion(f"key {key_id} is pending deletion; cancel the deletion first")
    if state is KeyState.DESTROYED:
        raise NotFound(f"key {key_id} was deleted; its material is destroyed")


def next_state_enable(key_id: str, state: KeyState) -> KeyState:
    require_manageable(key_id, state)
    if state is not KeyState.DISABLED:
        raise InvalidState(f"key {key_id} is not disabled (state {state.name})", reason=Reason.KEY_NOT_DISABLED)
    return KeyState.ENABLED


def next_state_disable(key_id: str, state: KeyState) -> KeyState:
    require_manageable(key_id, state)
    if state is not KeyState.ENABLED:
        raise InvalidState(f"key {key_id} is not enabled (state {state.name})", reason=Reason.KEY_NOT_ENABLED)
    return KeyState.DISABLED


def next_state_schedule_deletion(key_id: str, state: KeyState) -> KeyState:
    if state is KeyState.PENDING_DELETION:
        raise InvalidState(f"key {key_id} is already pending deletion", reason=Reason.ALREADY_PENDING_DELETION)
    if state is KeyState.DESTROYED:
        raise NotFound(f"key {key_id} was deleted; its material is destroyed")
    return KeyState.PENDING_DELETION


def next_state_cancel_deletion(key_id: str, state: KeyState) -> KeyState:
    if state is not KeyState.PENDING_DELETION:
        raise InvalidState(
            f"key {key_id} is not pending deletion (state {state.name})", reason=Reason.NOT_PENDING_DELETION
        )
    return KeyState.DISABLED
