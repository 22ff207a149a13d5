"""Key policies: AWS's policy grammar and its evaluation, pure (no I/O, no server, no keystore).

The keystore stores a key's document as text; the server's authorisation
(:meth:`kubekms.server.principals.PrincipalGrant.authorize_key`) parses it here and combines the
:class:`Decision` with the principal's own permissions.
"""

from kubekms.policies.actions import policy_action
from kubekms.policies.evaluation import Decision, PolicyRequest, evaluate
from kubekms.policies.grammar import KeyPolicy, PolicyError, default_policy, parse_policy
from kubekms.policies.grants import GRANT_OPERATIONS, grant_allows, grant_may_create, grant_operations_for

__all__ = [
    "GRANT_OPERATIONS",
    "Decision",
    "KeyPolicy",
    "PolicyError",
    "PolicyRequest",
    "default_policy",
    "evaluate",
    "grant_allows",
    "grant_may_create",
    "grant_operations_for",
    "parse_policy",
    "policy_action",
]
