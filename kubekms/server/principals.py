"""Principals (AK/SK identities) and their permissions: per operation, per key, per project.

Lookups are precomputed once at load time: the request path does dictionary and set
lookups only. ``"*"`` in a list means every operation / key / project.

A key's own policy (:mod:`kubekms.policies`) is evaluated with these permissions as AWS
evaluates a key policy with IAM policies: an explicit Deny in the key policy refuses; an Allow
naming the principal (or ``*``) allows; an Allow naming the account delegates to the ``keys``
list here; nothing allowing refuses. A key without a policy of its own has the default policy
(the account in control), which is exactly the ``keys`` list. The ``actions`` and ``projects``
lists stay a ceiling on every call, whatever a key policy says.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kubekms import policies
from kubekms.backend import Backend, GrantTerms
from kubekms.errors import AccessDenied, NotFound, Reason
from kubekms.keystore import rules
from kubekms.naming import is_key_id
from kubekms.providers.local import LocalBackend
from kubekms.wire.v1.values import encryption_context_aad
from kubekms.yamlfile import read_yaml

WILDCARD = "*"
DELETION = "schedule-key-deletion"


class PrincipalsFileError(ValueError):
    """The principals file is missing, unsafe (mode wider than 0600) or malformed."""


def _allowed(values: Iterable[str]) -> frozenset[str] | None:
    """None means everything."""
    values = frozenset(values)
    return None if WILDCARD in values else values


@dataclass(frozen=True)
class PrincipalGrant:
    """One identity with its secret and permissions. ``repr`` never shows the secret."""

    name: str
    access_key: str
    secret_key: str = field(repr=False)
    actions: frozenset[str] | None = None
    keys: frozenset[str] | None = None
    projects: frozenset[str] | None = None
    # the Cloud KMS API (issue 16): a service-account email and its RSA public key (PEM), or ""
    gcp_service_account: str = ""
    gcp_public_key: str = field(default="", repr=False)

    @classmethod
    def build(
        cls,
        name: str,
        access_key: str,
        secret_key: str,
        *,
        actions: Sequence[str] = (WILDCARD,),
        keys: Sequence[str] = (WILDCARD,),
        projects: Sequence[str] = (WILDCARD,),
        gcp_service_account: tuple[str, str] = ("", ""),
    ) -> PrincipalGrant:
        return cls(name, access_key, secret_key, _allowed(actions), _allowed(keys), _allowed(projects),
                   *gcp_service_account)  # fmt: skip

    @property
    def all_keys(self) -> bool:
        return self.keys is None

    def check_project(self, project_id: str) -> None:
        if self.projects is not None and project_id not in self.projects:
            raise AccessDenied(
                f"principal {self.name!r} may not use project {project_id!r}", reason=Reason.PROJECT_DENIED
            )

    def check_operation(self, operation: str, project_id: str) -> None:
        self.check_project(project_id)
        if self.actions is not None and operation not in self.actions:
            raise AccessDenied(f"principal {self.name!r} may not call {operation}", reason=Reason.OPERATION_DENIED)

    def names_allowed_key(self, names: Iterable[str]) -> bool:
        """True if any of the key's names (its id, its aliases) is in the principal's key list."""
        return self.keys is None or not self.keys.isdisjoint(names)

    def deny_key(self, operation: str, key_ref: str) -> AccessDenied:
        return AccessDenied(f"principal {self.name!r} may not call {operation} on key {key_ref!r}")

    async def authorize_key(
        self, operation: str, backend: Backend, key_ref: str, *, account: str, permission: str = "", body: bytes = b""
    ) -> None:
        """Allow if the key's policy and this principal's key list allow, by id or any alias (every wire).

        ``permission`` (default: ``operation``) names the action the key policy sees; ``body`` holds
        the request's encryption context, read only if a policy condition asks for it.
        """
        action = policies.policy_action(permission or operation)
        await self.authorize_action(action, backend, key_ref, account=account, label=operation,
                                    context=lambda: policy_context(body, operation),
                                    permission=permission or operation)  # fmt: skip

    async def authorize_action(
        self,
        action: str,
        backend: Backend,
        key_ref: str,
        *,
        account: str,
        context: Callable[[], Mapping[str, str]] = dict,
        label: str = "",
        also_named: tuple[str, ...] = (),
        grant_filter: Callable[[GrantTerms], bool] | None = None,
        permission: str = "",
    ) -> None:
        """Allow ``action`` (``kms:Encrypt``) on the key, or raise AccessDenied naming ``label`` (or the action).

        ``also_named``: names the key list may give the key besides its id and aliases (a Cloud KMS resource name);
        ``grant_filter``: the only grants that may allow it (CreateGrant: those whose operations cover the new one's);
        ``permission``: the wire's permission of the call (a grant made on the v1.0 wire allows only those it names).
        """
        label = label or action
        try:
            document = await backend.get_key_policy(key_ref)
        except NotFound:
            document = None  # the operation answers NotFound itself, or a denial below hides the key
        if document is None:  # the default policy: the key list decides, then grants
            if self.names_allowed_key((key_ref, *also_named)):
                return
            names = await _names(backend, key_ref)
            if self.names_allowed_key(names):
                return
            if not names or not await self._granted(
                backend, action, names[0], account, context, grant_filter, permission
            ):
                raise self.deny_key(label, key_ref)
            return
        key_id = key_ref.lower() if is_key_id(key_ref) else (await backend.describe_key(key_ref)).key_id
        request = policies.PolicyRequest(self.name, account, action, key_id, encryption_context=context)
        decision = policies.evaluate(policies.parse_policy(document, stored=True), request)
        if decision is policies.Decision.DENY:
            raise self.deny_key(label, key_ref)
        if decision is policies.Decision.ALLOW:
            return
        if decision is policies.Decision.DELEGATED and (
            self.names_allowed_key((key_ref, *also_named)) or self.names_allowed_key(await _names(backend, key_id))
        ):
            return
        if not await self._granted(backend, action, key_id, account, context, grant_filter, permission):
            raise self.deny_key(label, key_ref)

    async def _granted(
        self,
        backend: Backend,
        action: str,
        key_id: str,
        account: str,
        context: Callable[[], Mapping[str, str]],
        grant_filter: Callable[[GrantTerms], bool] | None = None,
        permission: str = "",
    ) -> bool:
        """A grant on the key allows the action to this principal (read only when nothing else allowed)."""
        request = policies.PolicyRequest(self.name, account, action, key_id, encryption_context=context,
                                         permission=permission)  # fmt: skip
        return any(
            policies.grant_allows(grant.terms, request) and (grant_filter is None or grant_filter(grant.terms))
            for grant in await backend.list_grants(key_id)
        )

    def _allowed_by(self, policy: policies.KeyPolicy, request: policies.PolicyRequest, names: Iterable[str]) -> bool:
        decision = policies.evaluate(policy, request)
        if decision is policies.Decision.DELEGATED:
            return self.names_allowed_key(names)
        return decision is policies.Decision.ALLOW

    def keeps_policy_control(self, document: str, key_id: str, names: Iterable[str], account: str) -> bool:
        """AWS's lockout safety check: may this principal still call PutKeyPolicy on the key under ``document``?

        ``names``: the key's id and aliases ("" for a key still to be created).
        """
        if self.actions is not None and "put-key-policy" not in self.actions:
            return False
        request = policies.PolicyRequest(self.name, account, "kms:PutKeyPolicy", key_id)
        return self._allowed_by(policies.parse_policy(document), request, names)

    async def authorize_tag_change(self, backend: Backend, key_ref: str, tag_keys: Iterable[str], *,
                                   account: str) -> None:  # fmt: skip
        """Setting or removing ownership tags (``kubekms.io/``) on an existing key: the operator deletes the keys
        a KMSKey's tag names, so that also needs ScheduleKeyDeletion on the key (else "tag" would grant "delete").
        Every wire's tag operations call this after their own authorisation; CreateKey's tags need nothing more."""
        if not any(rules.is_ownership_tag(tag_key) for tag_key in tag_keys):
            return
        try:
            self.check_operation(DELETION, account)
            await self.authorize_action(policies.policy_action(DELETION), backend, key_ref, account=account)
        except AccessDenied:
            raise AccessDenied(
                f"tags beginning with {rules.OWNERSHIP_TAG_PREFIX!r} (any case) are reserved: they name the KMSKey "
                f"owning the key, so changing one also needs {DELETION} (kms:ScheduleKeyDeletion) on key "
                f"{key_ref!r}, which principal {self.name!r} may not call",
                reason=Reason.OPERATION_DENIED,
            ) from None

    def deny_account_wide(self, operation: str) -> AccessDenied:
        return AccessDenied(
            f"principal {self.name!r} is limited to some keys and may not call the account-wide {operation}"
        )


async def _names(backend: Backend, key_ref: str) -> tuple[str, ...]:
    try:
        if isinstance(backend, LocalBackend):  # the server's own keystore keeps them cached
            return await backend.key_names(key_ref)
        meta = await backend.describe_key(key_ref)
    except NotFound:
        return ()  # do not reveal which keys exist: the caller denies
    return (meta.key_id, meta.alias, *meta.aliases)


_CONTEXT_FIELDS = ("EncryptionContext", "SourceEncryptionContext", "encryption_context")

# the v1.0 operations sealing or opening with the caller's AAD (RequestFields.aad): encryption_context, unless a text
# additional_authenticated_data (which wins) is given; every other v1.0 operation uses no context
V1_CONTEXT_OPERATIONS = frozenset({"create-datakey", "create-datakey-without-plaintext", "encrypt-datakey",
                                   "decrypt-datakey", "encrypt-data", "decrypt-data", "create-rsa-datakey-pair",
                                   "create-ec-datakey-pair"})  # fmt: skip
_AWS_CONTEXT_OPERATIONS = ("Encrypt", "Decrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext",
                           "GenerateDataKeyPair", "GenerateDataKeyPairWithoutPlaintext")  # fmt: skip
# a v1.0 operation's text AAD field, which wins over its encryption_context (re-encrypt's source key: its source's)
_V1_AAD_FIELD_OF: Mapping[str, str] = {
    "re-encrypt": "source_additional_authenticated_data",
    **dict.fromkeys(V1_CONTEXT_OPERATIONS, "additional_authenticated_data"),
}
# an operation's own context field: the one it seals or opens with, so the one key policy conditions and grant
# constraints read. ReEncrypt's destination key is authorised on DestinationEncryptionContext by its handler.
_CONTEXT_FIELD_OF: Mapping[str, str] = {
    "ReEncrypt": "SourceEncryptionContext",
    **dict.fromkeys(_AWS_CONTEXT_OPERATIONS, "EncryptionContext"),
    **dict.fromkeys(V1_CONTEXT_OPERATIONS, "encryption_context"),
}


def encryption_context(body: bytes) -> Mapping[str, str]:
    """The context a body names in any wire's field (the AWS wire's, ReEncrypt's source, the v1.0 wire's): the v1.0
    wire refuses a body where that is not the one its operation uses.

    A body the wire would refuse yields none here: the operation refuses it before any key is used.
    """
    fields = _json_fields(body)
    for name in _CONTEXT_FIELDS:
        context = _string_map(fields.get(name))
        if context is not None:
            return context
    return {}


def policy_context(body: bytes, operation: str) -> Mapping[str, str]:
    """The encryption context key policies and grants see: the operation's own field, never another one (a
    grantee bound to one context named it in a field Decrypt ignores and opened another's ciphertexts, S9-H1-4).

    A v1.0 text AAD, which wins over encryption_context, is the context it seals as (:func:`context_sealed_as`).
    """
    fields = _json_fields(body)
    aad_name = _V1_AAD_FIELD_OF.get(operation)
    if aad_name is not None:
        text = fields.get(aad_name)
        if isinstance(text, str) and text:
            return context_sealed_as(text)
    name = _CONTEXT_FIELD_OF.get(operation)
    if name is None:
        return {}
    return _string_map(fields.get(name)) or {}


def context_sealed_as(aad: str) -> Mapping[str, str]:
    """The encryption context whose canonical form (what encryption_context seals: sorted, compact JSON) is the
    text AAD ``aad`` byte for byte, else none. Such a text opens what that context sealed, on any wire, so key
    policies and grants must see that context for it (S9-H1-8)."""
    context = _string_map(_json_fields(aad.encode())) if aad.startswith("{") else None
    if not context or encryption_context_aad(context, opening=True) != aad.encode():
        return {}
    return context


def _json_fields(body: bytes) -> Mapping[str, object]:
    try:
        fields = json.loads(body) if body else {}
    except (ValueError, RecursionError):
        return {}
    return fields if isinstance(fields, dict) else {}


def _string_map(value: object) -> Mapping[str, str] | None:
    if isinstance(value, dict) and all(isinstance(item, str) for item in value.values()):
        return value
    return None


class PrincipalDirectory:
    """Access key -> principal, built once."""

    def __init__(self, principals: Iterable[PrincipalGrant]) -> None:
        self._by_access_key: dict[str, PrincipalGrant] = {}
        for principal in principals:
            if principal.access_key in self._by_access_key:
                raise PrincipalsFileError(f"access key of principal {principal.name!r} is used twice")
            self._by_access_key[principal.access_key] = principal

    def __len__(self) -> int:
        return len(self._by_access_key)

    def __iter__(self) -> Iterator[PrincipalGrant]:
        return iter(self._by_access_key.values())

    def get(self, access_key: str) -> PrincipalGrant | None:
        return self._by_access_key.get(access_key)

    def secret_for(self, access_key: str) -> str | None:
        principal = self._by_access_key.get(access_key)
        return None if principal is None else principal.secret_key


def _string_list(entry: Mapping[str, object], name: str, where: str) -> list[str]:
    value = entry.get(name, [WILDCARD])
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise PrincipalsFileError(f"{where}: {name} must be a list of non-empty strings")
    return value


def _gcp_service_account(entry: Mapping[str, object], where: str) -> tuple[str, str]:
    """``gcp_service_account: {client_email, public_key}`` -> (email, PEM); ("", "") when absent."""
    value = entry.get("gcp_service_account")
    if value is None:
        return "", ""
    email = value.get("client_email") if isinstance(value, dict) else None
    public_key = value.get("public_key") if isinstance(value, dict) else None
    if not isinstance(email, str) or not email or not isinstance(public_key, str) or not public_key:
        raise PrincipalsFileError(f"{where}: gcp_service_account needs client_email and public_key (PEM)")
    return email, public_key


def parse_principals(data: object, *, source: str) -> PrincipalDirectory:
    if not isinstance(data, list):
        raise PrincipalsFileError(f"{source}: expected a YAML list of principals")
    principals = []
    names: set[str] = set()
    for index, entry in enumerate(data):
        where = f"{source}: principal #{index + 1}"
        if not isinstance(entry, dict):
            raise PrincipalsFileError(f"{where}: expected a mapping")
        name, access_key, secret_key = entry.get("name"), entry.get("access_key"), entry.get("secret_key")
        for field_name, value in (("name", name), ("access_key", access_key), ("secret_key", secret_key)):
            if not isinstance(value, str) or not value:
                raise PrincipalsFileError(f"{where}: {field_name} must be a non-empty string")
        assert isinstance(name, str) and isinstance(access_key, str) and isinstance(secret_key, str)
        if name in names:
            raise PrincipalsFileError(f"{where}: the name {name!r} is used twice")
        names.add(name)
        principals.append(
            PrincipalGrant.build(
                name,
                access_key,
                secret_key,
                actions=_string_list(entry, "actions", where),
                keys=_string_list(entry, "keys", where),
                projects=_string_list(entry, "projects", where),
                gcp_service_account=_gcp_service_account(entry, where),
            )
        )
    return PrincipalDirectory(principals)


def load_principals(path: Path) -> PrincipalDirectory:
    """Read the principals file; refuse it unless only its owner may read it (mode 0600 or 0400)."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError as error:
        raise PrincipalsFileError(f"cannot read principals file {path}: {error.strerror}") from None
    if mode & 0o077:
        raise PrincipalsFileError(f"principals file {path} has mode {mode:04o}; it holds secrets: chmod 600 it")
    return parse_principals(read_yaml(path, "principals file", error=PrincipalsFileError), source=str(path))
