"""Typed views of the KMSKey and KMSBackend objects, parsed once at the top of each handler.

The CRD schema already validates and defaults every field; parsing here catches what a
schema cannot (an object stored before a default existed, a hand-edited status) and turns
it into :class:`InvalidSpec` with a precise message instead of a KeyError deep inside.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubekms.backend import KEY_SPECS, SYMMETRIC_KEY_SPEC, key_usages
from kubekms.naming import is_alias
from kubekms.policies import PolicyError, parse_policy

GROUP = "kubekms.io"
VERSION = "v1alpha1"
KEYS = "kmskeys"
BACKENDS = "kmsbackends"
ROTATE_ANNOTATION = f"{GROUP}/rotate"
OWNER_UID_TAG = f"{GROUP}/owner-uid"
OWNER_TAG = f"{GROUP}/owner"
ROTATE_TAG = f"{GROUP}/rotate-request"  # the last kubekms.io/rotate value acted on, see reconcile
OPERATOR_TAG_PREFIX = f"{GROUP}/"
DERIVED_ALIAS_PREFIX = "k8s/"  # then the KMSKey's namespace: see derived_alias
MAX_POLICY_DEPTH = 32  # AWS's policy grammar needs 5 levels; the apiserver takes ~10,000


# providers whose KMSBackend may leave out credentialsSecretRef: the operator pod's own cloud identity
AMBIENT_IDENTITY_PROVIDERS = frozenset({"aws", "gcp"})


class InvalidSpec(ValueError):
    """The object says something the operator cannot do; retrying will not help."""


class NotForKeyType(InvalidSpec):
    """The object asks an asymmetric or HMAC key for what only a symmetric key does (rotation)."""


@dataclass(frozen=True)
class Owner:
    """The KMSKey object a key belongs to, as written in the key's tags."""

    namespace: str
    name: str
    uid: str

    @property
    def reference(self) -> str:
        return f"{self.namespace}/{self.name}"

    def tags(self) -> dict[str, str]:
        return {OWNER_UID_TAG: self.uid, OWNER_TAG: self.reference}


@dataclass(frozen=True)
class Adoption:
    key_id: str = ""
    alias: str = ""

    @property
    def target(self) -> str:
        return self.key_id or self.alias


@dataclass(frozen=True)
class DesiredKey:
    """``spec`` of a KMSKey."""

    backend: str | None
    description: str
    key_spec: str
    key_usage: str
    enabled: bool
    rotation_enabled: bool
    rotation_days: int
    aliases: tuple[str, ...]
    tags: Mapping[str, str]
    deletion_policy: str
    pending_window_days: int
    adopt: Adoption | None
    rotate_request: str = ""
    owner: Owner = field(default_factory=lambda: Owner("", "", ""))
    policy: str | None = None  # spec.policy as JSON text (see check_convergeable); None: not managed
    cluster_encryption: bool = False

    @property
    def symmetric(self) -> bool:
        return self.key_spec == SYMMETRIC_KEY_SPEC

    def primary_alias(self) -> str:
        """The alias given at creation: the first listed, else one derived from the object's name."""
        return self.aliases[0] if self.aliases else derived_alias(self.owner.namespace, self.owner.name)

    def wanted_aliases(self) -> set[str]:
        return set(self.aliases) or {self.primary_alias()}

    def wanted_tags(self) -> dict[str, str]:
        return {**self.tags, **self.owner.tags()}


def derived_alias(namespace: str, name: str) -> str:
    """``k8s/<namespace>/<name>`` with the name's dots as colons: an alias takes no dot and a Kubernetes
    name no colon, so no two objects derive the same alias."""
    return f"{DERIVED_ALIAS_PREFIX}{namespace}/{name.replace('.', ':')}"


def _typed(value: Any, kind: type, where: str, default: Any) -> Any:
    if value is None:
        return default
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        raise InvalidSpec(f"{where} must be a {kind.__name__}, got {type(value).__name__}")
    return value


def parse_key(
    spec: Mapping[str, Any], *, namespace: str, name: str, uid: str, annotations: Mapping[str, str]
) -> DesiredKey:
    rotation = _typed(spec.get("rotation"), dict, "spec.rotation", {})
    adopt_spec = spec.get("adopt")
    adopt = None
    if adopt_spec is not None:
        adopt_spec = _typed(adopt_spec, dict, "spec.adopt", {})
        adopt = Adoption(
            key_id=_typed(adopt_spec.get("keyId"), str, "spec.adopt.keyId", ""),
            alias=_typed(adopt_spec.get("alias"), str, "spec.adopt.alias", ""),
        )
        if bool(adopt.key_id) == bool(adopt.alias):
            raise InvalidSpec("spec.adopt needs exactly one of keyId and alias")
    backend_ref = _typed(spec.get("backendRef"), dict, "spec.backendRef", {})
    tags = _typed(spec.get("tags"), dict, "spec.tags", {})
    for tag_key, tag_value in tags.items():
        if not isinstance(tag_value, str):
            raise InvalidSpec(f"spec.tags[{tag_key!r}] must be a string")
        if tag_key.startswith(OPERATOR_TAG_PREFIX):
            raise InvalidSpec(f"spec.tags[{tag_key!r}]: tags under {OPERATOR_TAG_PREFIX} belong to the operator")
    aliases = _typed(spec.get("aliases"), list, "spec.aliases", [])
    if not all(isinstance(alias, str) and alias for alias in aliases):
        raise InvalidSpec("spec.aliases must be non-empty strings")
    deletion_policy = _typed(spec.get("deletionPolicy"), str, "spec.deletionPolicy", "Delete")
    if deletion_policy not in ("Delete", "Retain"):
        raise InvalidSpec(f"spec.deletionPolicy must be Delete or Retain, got {deletion_policy!r}")
    cluster_encryption = _typed(spec.get("clusterEncryption"), dict, "spec.clusterEncryption", {})
    policy = _typed(spec.get("policy"), dict, "spec.policy", None)
    if policy is not None and _deeper_than(policy, MAX_POLICY_DEPTH):
        raise InvalidSpec(f"spec.policy nests deeper than {MAX_POLICY_DEPTH} levels")
    return DesiredKey(
        backend=_typed(backend_ref.get("name"), str, "spec.backendRef.name", None) or None,
        description=_typed(spec.get("description"), str, "spec.description", ""),
        key_spec=_typed(spec.get("keySpec"), str, "spec.keySpec", SYMMETRIC_KEY_SPEC),
        key_usage=_typed(spec.get("keyUsage"), str, "spec.keyUsage", "ENCRYPT_DECRYPT"),
        enabled=_typed(spec.get("enabled"), bool, "spec.enabled", True),
        rotation_enabled=_typed(rotation.get("enabled"), bool, "spec.rotation.enabled", False),
        rotation_days=_typed(rotation.get("periodDays"), int, "spec.rotation.periodDays", 365),
        aliases=tuple(dict.fromkeys(aliases)),
        tags=dict(tags),
        deletion_policy=deletion_policy,
        pending_window_days=_typed(spec.get("pendingWindowDays"), int, "spec.pendingWindowDays", 30),
        adopt=adopt,
        rotate_request=str(annotations.get(ROTATE_ANNOTATION) or ""),
        owner=Owner(namespace, name, uid),
        policy=None if policy is None else json.dumps(policy, indent=2, sort_keys=True),
        cluster_encryption=bool(cluster_encryption.get("enabled")),
    )


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether objects and lists nest deeper than ``limit`` in ``value`` (without recursion)."""
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def check_convergeable(desired: DesiredKey) -> None:
    """What the key's convergence needs beyond the parse, checked before it starts (never before a deletion,
    which must go ahead): a key type the backend protocol knows with a usage it allows, no rotation unless the
    key is symmetric, and a policy in the grammar of :mod:`kubekms.policies`."""
    key_spec, key_usage = desired.key_spec, desired.key_usage
    check_namespace_aliases(desired)
    if not desired.aliases and not is_alias(desired.primary_alias()):
        alias = desired.primary_alias()
        raise InvalidSpec(
            f"the alias derived from the object's name ({len(alias)} characters, k8s/<namespace>/<name>) is not a"
            " valid alias (1-255 of [a-zA-Z0-9:/_-], not ending in /default): set spec.aliases"
        )
    if key_spec not in KEY_SPECS:
        raise InvalidSpec(f"spec.keySpec {key_spec!r} is not one of {', '.join(KEY_SPECS)}")
    if key_usage not in key_usages(key_spec):
        allowed = " or ".join(key_usages(key_spec))
        raise InvalidSpec(f"spec.keyUsage {key_usage} does not suit keySpec {key_spec} (it takes {allowed})")
    if desired.policy is not None:
        try:
            parse_policy(desired.policy)
        except PolicyError as error:
            raise InvalidSpec(f"spec.policy: {error}") from None
    if desired.symmetric:
        return
    if desired.rotation_enabled:
        raise NotForKeyType(f"spec.rotation: automatic rotation is for {SYMMETRIC_KEY_SPEC} keys only, not {key_spec}")
    if desired.cluster_encryption:
        raise NotForKeyType(f"spec.clusterEncryption needs an {SYMMETRIC_KEY_SPEC} key, not {key_spec}")
    if desired.rotate_request:
        raise NotForKeyType(f"{ROTATE_ANNOTATION}: only {SYMMETRIC_KEY_SPEC} keys rotate, not {key_spec}; remove it")


def check_namespace_aliases(desired: DesiredKey) -> None:
    """Aliases under ``k8s/`` are the namespaces' (:func:`derived_alias`): a KMSKey may list only its own
    namespace's, so that no namespace takes the name another namespace's KMSKey is made under. Any case
    (a backend may compare aliases regardless of case)."""
    own = derived_alias(desired.owner.namespace, "")
    for index, alias in enumerate(desired.aliases):
        if alias.lower().startswith(DERIVED_ALIAS_PREFIX) and not alias.startswith(own):
            raise InvalidSpec(
                f"spec.aliases[{index}] {alias!r}: aliases under {DERIVED_ALIAS_PREFIX}<namespace>/ belong to that "
                f"namespace's KMSKeys; this one may use {own}..."
            )


def same_policy(stored: str | None, wanted: str) -> bool:
    """Whether the backend's document says what spec.policy says (JSON equality, not text)."""
    if stored is None:
        return False
    try:
        return bool(json.loads(stored) == json.loads(wanted))
    except ValueError:
        return False


@dataclass(frozen=True)
class SecretKeyRef:
    namespace: str
    name: str


@dataclass(frozen=True)
class BackendSpec:
    """``spec`` of a KMSBackend."""

    provider: str
    endpoint: str
    project_id: str
    region: str  # for gcp: the location of the key ring
    key_ring: str  # gcp only
    credentials: SecretKeyRef | None  # None: provider aws or gcp with the pod's ambient cloud identity
    access_key_key: str
    secret_key_key: str
    security_token_key: str
    service_account_key_key: str  # gcp: the Secret's key that holds the service-account key JSON
    ca: SecretKeyRef | None
    ca_key: str
    default: bool
    adoption_namespaces: tuple[str, ...] = ()  # globs of the namespaces whose KMSKeys may spec.adopt its keys


def _secret_ref(ref: Mapping[str, Any], where: str) -> SecretKeyRef:
    namespace = _typed(ref.get("namespace"), str, f"{where}.namespace", "")
    name = _typed(ref.get("name"), str, f"{where}.name", "")
    if not namespace or not name:
        raise InvalidSpec(f"{where} needs namespace and name")
    return SecretKeyRef(namespace, name)


def parse_backend(spec: Mapping[str, Any]) -> BackendSpec:
    provider = _typed(spec.get("provider"), str, "spec.provider", "")
    if not provider:
        raise InvalidSpec("spec.provider is required")
    credentials = _typed(spec.get("credentialsSecretRef"), dict, "spec.credentialsSecretRef", None)
    if credentials is None and provider not in AMBIENT_IDENTITY_PROVIDERS:
        raise InvalidSpec("spec.credentialsSecretRef is required")
    ca = _typed(spec.get("caSecretRef"), dict, "spec.caSecretRef", None)
    key_ring = _typed(spec.get("keyRing"), str, "spec.keyRing", "")
    if provider == "gcp" and not key_ring:
        raise InvalidSpec("spec.keyRing is required for provider gcp")
    location = _typed(spec.get("location"), str, "spec.location", "global")
    adoption = _typed(spec.get("adoption"), dict, "spec.adoption", {})
    adopters = _typed(adoption.get("namespaces"), list, "spec.adoption.namespaces", [])
    if not all(isinstance(pattern, str) and pattern for pattern in adopters):
        raise InvalidSpec("spec.adoption.namespaces must be non-empty strings")
    return BackendSpec(
        provider=provider,
        endpoint=_typed(spec.get("endpoint"), str, "spec.endpoint", ""),
        project_id=_typed(spec.get("projectId"), str, "spec.projectId", "default"),
        region=location if provider == "gcp" else _typed(spec.get("region"), str, "spec.region", ""),
        key_ring=key_ring,
        credentials=_secret_ref(credentials, "spec.credentialsSecretRef") if credentials is not None else None,
        access_key_key=_typed((credentials or {}).get("accessKeyKey"), str, "accessKeyKey", "access_key"),
        secret_key_key=_typed((credentials or {}).get("secretKeyKey"), str, "secretKeyKey", "secret_key"),
        security_token_key=_typed((credentials or {}).get("securityTokenKey"), str, "securityTokenKey", ""),
        service_account_key_key=_typed(
            (credentials or {}).get("serviceAccountKeyKey"), str, "serviceAccountKeyKey", "key.json"
        ),
        ca=_secret_ref(ca, "spec.caSecretRef") if ca else None,
        ca_key=_typed((ca or {}).get("key"), str, "spec.caSecretRef.key", "ca.crt"),
        default=_typed(spec.get("default"), bool, "spec.default", False),
        adoption_namespaces=tuple(adopters),
    )
