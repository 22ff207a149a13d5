"""A v1.0 wire operation's shape: the call a handler sees, how an operation names its key, its key scope."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kubekms.backend import Backend, KeyMetadata
from kubekms.errors import AccessDenied, Reason
from kubekms.keystore import rules
from kubekms.server.principals import PrincipalGrant
from kubekms.wire.v1 import fields as v1_fields
from kubekms.wire.v1.fields import RequestFields

JsonAnswer = dict[str, Any] | list[Any]


class KeyScope(enum.Enum):
    NONE = "none"  # needs no key permission (gen-random)
    ACCOUNT = "account"  # sees or creates keys account-wide: only principals allowed every key
    KEY = "key"  # names one key
    LISTED = "listed"  # lists keys account-wide, leaving out those the caller may not see (the handler checks each)


def key_ref_of(path_key_id: str, query: Mapping[str, str], fields: RequestFields) -> str:
    """The key a request names: in the path (tags), the query (list-aliases) or the body; bounded valid text."""
    if path_key_id:
        return v1_fields.key_ref_text(path_key_id)
    if query.get("key_id"):
        return v1_fields.key_ref_text(query.get("key_id"))
    return fields.key_id()


KeyRefOf = Callable[[str, Mapping[str, str], RequestFields], str]  # (path key id, query, fields) -> key ref


@dataclass(frozen=True)
class Call:
    """One authenticated, parsed request as a handler sees it."""

    backend: Backend
    project_id: str
    fields: RequestFields
    query: Mapping[str, str]
    path_key_id: str = ""
    path_tag_key: str = ""
    caller: PrincipalGrant | None = None  # the signed-in principal, for what a handler authorises itself
    names_key: KeyRefOf = key_ref_of  # how the operation names its key (Operation.key_ref)

    def key_ref(self) -> str:
        return self.names_key(self.path_key_id, self.query, self.fields)

    async def authorize_tag_change(self, tag_keys: Iterable[str]) -> None:
        if self.caller is None:
            raise AccessDenied("this operation needs a signed-in principal")
        await self.caller.authorize_tag_change(self.backend, self.key_ref(), tag_keys, account=self.project_id)


Handler = Callable[[Call], Awaitable[JsonAnswer]]


@dataclass(frozen=True)
class Operation:
    name: str
    method: str
    scope: KeyScope
    handler: Handler
    key_optional: bool = False  # without a key_id the call lists every key the caller may see (list-aliases)
    key_ref: KeyRefOf = key_ref_of  # the key it names (decrypt-data: its ciphertext's; alias/associate: the alias's)

    def scope_of(self, query: Mapping[str, str]) -> KeyScope:
        if self.key_optional and not query.get("key_id"):
            return KeyScope.LISTED
        return self.scope


def page_request(fields: RequestFields) -> tuple[int, int | None]:
    """``limit`` and ``marker`` (an offset) of a v1 list call: list-keys and list-aliases share the rules."""
    limit = fields.integer("limit", code="KMS.1601", default=100)
    assert limit is not None
    rules.check_range("limit", limit, rules.LIST_LIMIT, reason=Reason.LIST_LIMIT_INVALID)
    return limit, fields.marker("marker", code="KMS.1602")


async def all_keys(backend: Backend) -> list[KeyMetadata]:
    """Every key of the project, whatever its state and spec."""
    keys: list[KeyMetadata] = []
    marker: str | None = None
    while True:
        page = await backend.list_keys(limit=rules.LIST_LIMIT[1], marker=marker)
        keys.extend(page.keys)
        if page.next_marker is None:
            return keys
        marker = page.next_marker


def signed_in(call: Call) -> PrincipalGrant:
    if call.caller is None:
        raise AccessDenied("this operation needs a signed-in principal")
    return call.caller
