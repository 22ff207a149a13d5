"""The backend protocol: the one async interface every consumer uses to reach keys.

The providers named in :data:`kubekms.providers.PROVIDERS` (``local``, ``kubekms``,
``huaweicloud``, ``aws``, ...) implement :class:`Backend`; the operator, the plugin, the
server's wires and the CLI only ever see this protocol, the models below and the errors in
:mod:`kubekms.errors`.

Units: lengths are **bytes**, times are timezone-aware UTC ``datetime`` objects,
intervals are whole days. Wire quirks (bits, milliseconds, string numbers) belong to
the wire modules (:mod:`kubekms.wire`), never here.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Protocol, runtime_checkable

from kubekms.errors import InvalidArgument, Reason


class KeyState(enum.Enum):
    """Key states of the KMS v1.0 wire, plus DESTROYED once the pending window ended."""

    PENDING_ACTIVATION = "1"
    ENABLED = "2"
    DISABLED = "3"
    PENDING_DELETION = "4"
    PENDING_IMPORT = "5"
    DESTROYED = "destroyed"


SYMMETRIC_KEY_SPEC = "AES_256"  # AWS calls it SYMMETRIC_DEFAULT
RSA_KEY_SPECS = ("RSA_2048", "RSA_3072", "RSA_4096")
ECC_KEY_SPECS = ("ECC_NIST_P256", "ECC_NIST_P384", "ECC_SECG_P256K1")
HMAC_KEY_SPECS = ("HMAC_224", "HMAC_256", "HMAC_384", "HMAC_512")
KEY_SPECS = (SYMMETRIC_KEY_SPEC, *RSA_KEY_SPECS, *ECC_KEY_SPECS, *HMAC_KEY_SPECS)
KEY_USAGES = ("ENCRYPT_DECRYPT", "SIGN_VERIFY", "GENERATE_VERIFY_MAC")
DATA_KEY_SPECS = {"AES_256": 32, "AES_128": 16}
ORIGIN_KMS = "kms"  # the key material was made by the KMS
ORIGIN_EXTERNAL = "external"  # the key material is imported (BYOK)
WRAPPING_KEY_SPECS = RSA_KEY_SPECS  # GetParametersForImport's WrappingKeySpec
WRAPPING_ALGORITHMS = ("RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256")  # how imported material is wrapped
DATA_KEY_PAIR_SPECS = (*RSA_KEY_SPECS, *ECC_KEY_SPECS)  # GenerateDataKeyPair's KeyPairSpec

_RSA_SIGNING = tuple(f"RSASSA_{scheme}_SHA_{bits}" for scheme in ("PSS", "PKCS1_V1_5") for bits in (256, 384, 512))
_ECC_SIGNING = {"ECC_NIST_P256": "ECDSA_SHA_256", "ECC_NIST_P384": "ECDSA_SHA_384", "ECC_SECG_P256K1": "ECDSA_SHA_256"}


def key_usages(key_spec: str) -> tuple[str, ...]:
    """The usages a key spec allows (AWS's table); empty for an unknown spec."""
    if key_spec == SYMMETRIC_KEY_SPEC:
        return ("ENCRYPT_DECRYPT",)
    if key_spec in RSA_KEY_SPECS:
        return ("ENCRYPT_DECRYPT", "SIGN_VERIFY")
    if key_spec in ECC_KEY_SPECS:
        return ("SIGN_VERIFY",)
    if key_spec in HMAC_KEY_SPECS:
        return ("GENERATE_VERIFY_MAC",)
    return ()


def key_algorithms(key_spec: str, key_usage: str) -> tuple[str, ...]:
    """AWS's algorithm names a key of this spec and usage answers to: encryption, signing or MAC algorithms."""
    if key_spec == SYMMETRIC_KEY_SPEC:
        return ("SYMMETRIC_DEFAULT",)
    if key_spec in RSA_KEY_SPECS:
        return ("RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256") if key_usage == "ENCRYPT_DECRYPT" else _RSA_SIGNING
    if key_spec in _ECC_SIGNING:
        return (_ECC_SIGNING[key_spec],)
    if key_spec in HMAC_KEY_SPECS:
        return (key_spec.replace("HMAC_", "HMAC_SHA_"),)
    return ()


@dataclass(frozen=True)
class KeyMetadata:
    """What ``describe`` returns about one customer master key (CMK)."""

    key_id: str
    alias: str
    description: str
    key_spec: str
    key_usage: str
    state: KeyState
    created_at: datetime
    current_version: int
    rotation_enabled: bool
    rotation_interval_days: int
    last_rotation_at: datetime | None = None
    deletion_date: datetime | None = None
    aliases: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    origin: str = ORIGIN_KMS
    project_id: str = ""
    material_expires_at: datetime | None = None  # imported material with an expiration (ImportKeyMaterial ValidTo)
    region: str = ""  # the AWS region of a key made through the server's AWS wire; '' is none (every region)


@dataclass(frozen=True)
class KeyPage:
    keys: Sequence[KeyMetadata]
    next_marker: str | None
    total: int


@dataclass(frozen=True)
class RotationStatus:
    enabled: bool
    interval_days: int
    last_rotation_at: datetime | None
    number_of_rotations: int
    next_rotation_at: datetime | None


@dataclass(frozen=True)
class DataKey:
    """A data key. ``plaintext`` is None for the without-plaintext variant.

    ``key_version`` is the CMK version that wrapped ``ciphertext``.
    """

    key_id: str
    key_version: int
    ciphertext: bytes
    plaintext: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class KeyOutput:
    """What one key made: a signature, a MAC, an asymmetric ciphertext or plaintext, with the key that made it."""

    key_id: str
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class DataKeyPair:
    """A key pair (``pair_spec``) whose private key (PKCS #8 DER) is wrapped under a symmetric key.

    ``public_key`` is DER SubjectPublicKeyInfo; ``private_plaintext`` is None for the without-plaintext variant.
    """

    key_id: str
    pair_spec: str
    public_key: bytes
    private_ciphertext: bytes
    private_plaintext: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class ImportParameters:
    """What wraps key material for import: an RSA public key (DER SubjectPublicKeyInfo) and the token naming it."""

    key_id: str
    public_key: bytes
    import_token: bytes = field(repr=False)
    valid_to: datetime


@dataclass(frozen=True)
class Quota:
    resource: str
    used: int
    limit: int


def check_encryption_context(context: Mapping[str, str]) -> None:
    """A call's encryption context or a grant's constraint names no empty key (AWS: ValidationException)."""
    if "" in context:
        raise InvalidArgument("encryption context keys must not be empty", reason=Reason.AAD_INVALID)


@dataclass(frozen=True)
class GrantTerms:
    """What a grant allows: ``operations`` (AWS names: Encrypt, Decrypt, ...) to ``grantee`` (a principal ARN),
    under an optional encryption-context constraint (exactly equal, or a subset of the call's context).

    ``permissions``: the v1.0 operation names a grant made on that wire named (decrypt-datakey, ...). Two of them
    share one AWS operation (decrypt-datakey and decrypt-data: Decrypt), so such a grant allows only calls of the
    permissions it named, as principals' action lists keep them apart; empty (a grant made on the AWS wire): every
    call of its operations."""

    grantee: str
    operations: tuple[str, ...]
    retiring: str = ""
    name: str = ""
    context_equals: Mapping[str, str] | None = None
    context_subset: Mapping[str, str] | None = None
    issuing_account: str = ""
    permissions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Grant:
    grant_id: str
    key_id: str
    created_at: datetime
    terms: GrantTerms
    token: str = field(repr=False)  # names the grant in RetireGrant and GrantTokens; never logged


@runtime_checkable
class Backend(Protocol):
    """Every operation of a cloud KMS that kubekms needs, for one project/tenant.

    ``key_id`` arguments accept a key id or an alias wherever a key is named.
    ``aad`` is additional authenticated data bound to a data-key ciphertext.
    """

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
        """``policy``: the key's own policy document, stored with the key (None: the default policy).

        ``origin`` :data:`ORIGIN_EXTERNAL`: a key without material, PENDING_IMPORT until its material is imported.
        """
        ...

    async def list_keys(
        self, *, limit: int = 100, marker: str | None = None, state: KeyState | None = None, key_spec: str | None = None
    ) -> KeyPage:
        """Keys of ``state`` and ``key_spec`` (a keystore spec name; None: every spec), filtered before paging."""
        ...

    async def describe_key(self, key_id: str) -> KeyMetadata: ...

    async def find_keys_by_tag(self, tag_key: str, tag_value: str) -> list[KeyMetadata]: ...

    async def update_description(self, key_id: str, description: str) -> KeyMetadata: ...

    async def enable_key(self, key_id: str) -> KeyMetadata: ...

    async def disable_key(self, key_id: str) -> KeyMetadata: ...

    async def schedule_key_deletion(self, key_id: str, pending_days: int) -> KeyMetadata: ...

    async def cancel_key_deletion(self, key_id: str) -> KeyMetadata: ...

    # rotation
    async def set_rotation(self, key_id: str, *, enabled: bool, interval_days: int | None = None) -> RotationStatus: ...

    async def rotate_key(self, key_id: str) -> KeyMetadata: ...

    async def get_rotation_status(self, key_id: str) -> RotationStatus: ...

    # randomness and data keys
    async def generate_random(self, length: int) -> bytes: ...

    async def create_data_key(self, key_id: str, *, length: int = 32, aad: bytes = b"") -> DataKey: ...

    async def create_data_key_without_plaintext(
        self, key_id: str, *, length: int = 32, aad: bytes = b""
    ) -> DataKey: ...

    async def encrypt_data_key(self, key_id: str, plaintext: bytes, *, aad: bytes = b"") -> DataKey: ...

    async def decrypt_data_key(self, key_id: str, ciphertext: bytes, *, aad: bytes = b"") -> bytes: ...

    # asymmetric and HMAC keys (``algorithm``: AWS's names, see :func:`key_algorithms`)
    async def get_public_key(self, key_id: str) -> bytes:
        """The public key of an asymmetric key, DER SubjectPublicKeyInfo."""
        ...

    async def sign(self, key_id: str, message: bytes, *, algorithm: str, digest: bool = False) -> KeyOutput:
        """``digest``: ``message`` is already the digest of the algorithm's hash (AWS's MessageType DIGEST)."""
        ...

    async def verify(
        self, key_id: str, message: bytes, signature: bytes, *, algorithm: str, digest: bool = False
    ) -> bool: ...

    async def encrypt_asymmetric(self, key_id: str, plaintext: bytes, *, algorithm: str) -> KeyOutput: ...

    async def decrypt_asymmetric(self, key_id: str, ciphertext: bytes, *, algorithm: str) -> KeyOutput: ...

    async def generate_mac(self, key_id: str, message: bytes, *, algorithm: str) -> KeyOutput: ...

    async def verify_mac(self, key_id: str, message: bytes, mac: bytes, *, algorithm: str) -> bool: ...

    async def create_data_key_pair(
        self, key_id: str, pair_spec: str, *, aad: bytes = b"", with_plaintext: bool = True
    ) -> DataKeyPair:
        """A new key pair, its private key wrapped under the symmetric key ``key_id`` (as GenerateDataKey's)."""
        ...

    # imported key material (keys of origin ORIGIN_EXTERNAL)
    async def get_parameters_for_import(
        self, key_id: str, *, wrapping_algorithm: str, wrapping_key_spec: str
    ) -> ImportParameters: ...

    async def import_key_material(
        self,
        key_id: str,
        import_token: bytes,
        encrypted_material: bytes,
        *,
        valid_to: datetime | None = None,
        new_material: bool = False,
    ) -> None:
        """Unwrap and seal the material; ``valid_to``: when it expires (None: never). The material never leaves.

        ``new_material`` (AWS's ImportType NEW_KEY_MATERIAL): material other than the key's, staged for the
        on-demand rotation (rotate_key) that makes it current; else the key's first material or one it had before.
        """
        ...

    async def delete_imported_key_material(self, key_id: str) -> None: ...

    # aliases and tags
    async def create_alias(self, key_id: str, alias: str) -> None: ...

    async def delete_alias(self, key_id: str, alias: str) -> None: ...

    async def list_aliases(self, key_id: str) -> list[str]: ...

    async def update_alias(self, alias: str, key_id: str) -> None:
        """Point an existing alias at another key, in one step."""
        ...

    async def update_key_alias(self, key_id: str, alias: str) -> KeyMetadata:
        """Rename the key's primary alias (Huawei's key_alias) to ``alias``, in one step: the old name no longer
        names the key. Clouds whose keys have no primary alias (AWS, Cloud KMS) refuse."""
        ...

    # key policies: one JSON document per key (AWS's grammar, :mod:`kubekms.policies`)
    async def get_key_policy(self, key_id: str) -> str | None:
        """The key's policy document as stored, or None when the key has none of its own (the default applies)."""
        ...

    async def put_key_policy(self, key_id: str, document: str) -> None: ...

    # grants: permissions on one key for one principal, effective at once
    async def create_grant(self, key_id: str, terms: GrantTerms) -> Grant: ...

    async def list_grants(self, key_id: str | None = None, *, retiring: str = "") -> list[Grant]:
        """The key's grants (every key's if None), oldest first; ``retiring``: only those of that retiring principal."""
        ...

    async def find_grant(self, *, token: str = "", key_id: str = "", grant_id: str = "") -> Grant:
        """The grant named by its token, or by key and grant id; NotFound otherwise."""
        ...

    async def delete_grant(self, key_id: str, grant_id: str) -> None: ...

    async def tag_key(self, key_id: str, tags: Mapping[str, str]) -> None: ...

    async def untag_key(self, key_id: str, tag_keys: Sequence[str]) -> None: ...

    async def list_tags(self, key_id: str) -> dict[str, str]: ...

    # account
    async def instance_count(self) -> int: ...

    async def quotas(self) -> list[Quota]: ...

    async def check_health(self) -> None:
        """Return if the backend answers an authenticated call; raise a KMSError otherwise."""
        ...

    async def close(self) -> None: ...


def not_offered(provider: str, what: str, reason: Reason = Reason.INVALID_ARGUMENT) -> InvalidArgument:
    """The refusal of a provider whose cloud (or wire) lacks an operation of the protocol."""
    return InvalidArgument(f"provider {provider} does not offer {what}", reason=reason)


class NoGrants:
    """The grant operations of a provider that offers none through this protocol: each refuses."""

    provider_label: ClassVar[str]

    async def create_grant(self, key_id: str, terms: GrantTerms) -> Grant:
        raise not_offered(self.provider_label, "grants")

    async def list_grants(self, key_id: str | None = None, *, retiring: str = "") -> list[Grant]:
        raise not_offered(self.provider_label, "grants")

    async def find_grant(self, *, token: str = "", key_id: str = "", grant_id: str = "") -> Grant:
        raise not_offered(self.provider_label, "grants")

    async def delete_grant(self, key_id: str, grant_id: str) -> None:
        raise not_offered(self.provider_label, "grants")


class NoKeyPolicies:
    """Key policies and alias moves of a provider whose cloud (or wire) has neither: each refuses."""

    provider_label: ClassVar[str]

    async def update_alias(self, alias: str, key_id: str) -> None:
        raise not_offered(self.provider_label, "moving an alias (delete it, then create it on the other key)")

    async def get_key_policy(self, key_id: str) -> str | None:
        raise not_offered(self.provider_label, "key policies")

    async def put_key_policy(self, key_id: str, document: str) -> None:
        raise not_offered(self.provider_label, "key policies")


class NoKeyTypes:
    """The asymmetric and HMAC operations of a provider that offers them not through this protocol: each refuses."""

    provider_label: ClassVar[str]

    def _refused(self, what: str) -> InvalidArgument:
        return not_offered(self.provider_label, what, Reason.UNSUPPORTED_OPERATION)

    async def get_public_key(self, key_id: str) -> bytes:
        raise self._refused("asymmetric keys")

    async def sign(self, key_id: str, message: bytes, *, algorithm: str, digest: bool = False) -> KeyOutput:
        raise self._refused("asymmetric keys")

    async def verify(
        self, key_id: str, message: bytes, signature: bytes, *, algorithm: str, digest: bool = False
    ) -> bool:
        raise self._refused("asymmetric keys")

    async def encrypt_asymmetric(self, key_id: str, plaintext: bytes, *, algorithm: str) -> KeyOutput:
        raise self._refused("asymmetric keys")

    async def decrypt_asymmetric(self, key_id: str, ciphertext: bytes, *, algorithm: str) -> KeyOutput:
        raise self._refused("asymmetric keys")

    async def generate_mac(self, key_id: str, message: bytes, *, algorithm: str) -> KeyOutput:
        raise self._refused("HMAC keys")

    async def verify_mac(self, key_id: str, message: bytes, mac: bytes, *, algorithm: str) -> bool:
        raise self._refused("HMAC keys")

    async def create_data_key_pair(
        self, key_id: str, pair_spec: str, *, aad: bytes = b"", with_plaintext: bool = True
    ) -> DataKeyPair:
        raise self._refused("data key pairs")


class NoKeyImport:
    """Key material import of a provider that offers it not through this protocol: each operation refuses."""

    provider_label: ClassVar[str]

    async def get_parameters_for_import(
        self, key_id: str, *, wrapping_algorithm: str, wrapping_key_spec: str
    ) -> ImportParameters:
        raise not_offered(self.provider_label, "key material import", Reason.UNSUPPORTED_OPERATION)

    async def import_key_material(
        self,
        key_id: str,
        import_token: bytes,
        encrypted_material: bytes,
        *,
        valid_to: datetime | None = None,
        new_material: bool = False,
    ) -> None:
        raise not_offered(self.provider_label, "key material import", Reason.UNSUPPORTED_OPERATION)

    async def delete_imported_key_material(self, key_id: str) -> None:
        raise not_offered(self.provider_label, "key material import", Reason.UNSUPPORTED_OPERATION)
