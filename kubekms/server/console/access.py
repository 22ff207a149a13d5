"""What a signed-in principal may do in one project: the wires' own checks, nothing of its own.

Both wires authorise a call in the same three steps on :class:`PrincipalGrant`: the operation
and the project (``check_operation``), then by the operation's scope either the key
(``authorize_key``, by id or any alias) or, for account-wide operations, every key
(``deny_account_wide``). The console names its actions by the v1.0 operation names that
principals grant, runs the same steps before every backend call, and asks the same grant
whether to show a page or a button at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubekms.backend import Backend, KeyMetadata
from kubekms.errors import AccessDenied, Reason
from kubekms.server.operations import OPERATIONS, KeyScope
from kubekms.server.principals import PrincipalGrant


@dataclass(frozen=True)
class Access:
    principal: PrincipalGrant
    project_id: str

    def may(self, operation: str) -> bool:
        """True if some call of ``operation`` can pass (account-wide ones only for a principal of every key)."""
        try:
            self.principal.check_operation(operation, self.project_id)
        except AccessDenied:
            return False
        return OPERATIONS[operation].scope is not KeyScope.ACCOUNT or self.principal.all_keys

    def may_on(self, operation: str, key: KeyMetadata) -> bool:
        return self.may(operation) and self.principal.names_allowed_key((key.key_id, key.alias, *key.aliases))

    def may_read_audit(self) -> bool:
        """The project's audit log: only for a principal of every operation on every key of the project."""
        granted = self.principal
        return granted.actions is None and granted.keys is None and self.may("list-keys")

    def deny_audit(self) -> AccessDenied:
        return AccessDenied(
            f"principal {self.principal.name!r} may not read the audit log of project "
            f"{self.project_id!r}: it needs every operation on every key",
            reason=Reason.OPERATION_DENIED,
        )

    def check(self, operation: str) -> None:
        """The wires' first step, before any keystore is opened: the operation and the project."""
        self.principal.check_operation(operation, self.project_id)

    async def authorize(self, operation: str, backend: Backend, key_ref: str = "") -> None:
        """Raise the wire's AccessDenied (same code, same text) unless the wire would allow this call."""
        self.check(operation)
        scope = OPERATIONS[operation].scope
        if scope is KeyScope.KEY:
            await self.principal.authorize_key(operation, backend, key_ref, account=self.project_id)
        elif scope is KeyScope.ACCOUNT and not self.principal.all_keys:
            raise self.principal.deny_account_wide(operation)
