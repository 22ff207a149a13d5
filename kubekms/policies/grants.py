"""Whether a grant allows a request: AWS's grant semantics, pure.

A grant allows its operations on its key to its grantee principal; an encryption-context
constraint must hold for the call (EncryptionContextEquals: the call's context is exactly that
map; EncryptionContextSubset: it contains every pair). Key policy Deny statements still win
(the caller checks them first).
"""

from __future__ import annotations

from kubekms.backend import SYMMETRIC_KEY_SPEC, GrantTerms
from kubekms.policies.actions import ACTION_BY_PERMISSION
from kubekms.policies.evaluation import PolicyRequest

# the operations a grant may name (AWS's list, less DeriveSharedSecret, which this server does not offer)
GRANT_OPERATIONS = (
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "Sign",
    "Verify",
    "GetPublicKey",
    "GenerateMac",
    "VerifyMac",
    "DescribeKey",
    "CreateGrant",
    "RetireGrant",
)
_ANY_KEY = ("CreateGrant", "RetireGrant", "DescribeKey")
_DATA_KEYS = ("GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "GenerateDataKeyPair",
              "GenerateDataKeyPairWithoutPlaintext")  # fmt: skip
_ENCRYPTION = ("Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo")


def grant_operations_for(key_spec: str, key_usage: str) -> frozenset[str]:
    """The operations a grant on such a key may name (AWS's table of grant operations by key type)."""
    if key_usage == "SIGN_VERIFY":
        return frozenset((*_ANY_KEY, "Sign", "Verify", "GetPublicKey"))
    if key_usage == "GENERATE_VERIFY_MAC":
        return frozenset((*_ANY_KEY, "GenerateMac", "VerifyMac"))
    if key_spec == SYMMETRIC_KEY_SPEC:
        return frozenset((*_ANY_KEY, *_ENCRYPTION, *_DATA_KEYS))
    return frozenset((*_ANY_KEY, *_ENCRYPTION, "GetPublicKey"))


# AWS applies no encryption-context constraint to these; every other operation under a constraint must meet it
# (an operation without an encryption context, e.g. Sign, never does: AWS refuses such grants)
UNCONSTRAINED_OPERATIONS = frozenset({"DescribeKey", "RetireGrant"})
# a CreateGrant grant's constraint bounds the grants it makes (grant_may_create), not the CreateGrant call,
# which carries no encryption context: the AWS wire's CreateGrant checks it on the new grant
BOUNDING_OPERATIONS = frozenset({"CreateGrant"})


def grant_may_create(parent: GrantTerms, child: GrantTerms) -> bool:
    """A grant allowing CreateGrant makes only grants of its operations or fewer, under a constraint as strict.

    As strict: the parent's EncryptionContextEquals exactly; for its EncryptionContextSubset, a child
    constraint (either kind) holding every pair of it.
    """
    if not set(child.operations) <= set(parent.operations):
        return False
    if parent.permissions and not _permissions_of(child) <= set(parent.permissions):
        return False
    if parent.context_equals is not None:
        return child.context_equals is not None and dict(child.context_equals) == dict(parent.context_equals)
    if parent.context_subset is not None:
        constraint = child.context_equals if child.context_equals is not None else child.context_subset
        return constraint is not None and all(constraint.get(k) == v for k, v in parent.context_subset.items())
    return True


def _permissions_of(terms: GrantTerms) -> set[str]:
    """The wire permissions a grant allows calls of: those it named, else every one of its operations' actions."""
    if terms.permissions:
        return set(terms.permissions)
    actions = {f"kms:{operation}" for operation in terms.operations}
    return {permission for permission, action in ACTION_BY_PERMISSION.items() if action in actions}


def grant_allows(terms: GrantTerms, request: PolicyRequest) -> bool:
    operation = request.action.removeprefix("kms:")
    if terms.grantee != request.principal_arn or operation not in terms.operations:
        return False
    if terms.permissions and request.permission and request.permission not in terms.permissions:
        return False  # a v1.0 grant of decrypt-datakey allows no decrypt-data, though both are Decrypt
    if operation in UNCONSTRAINED_OPERATIONS or operation in BOUNDING_OPERATIONS:
        return True
    if terms.context_equals is not None:
        return dict(request.encryption_context()) == dict(terms.context_equals)
    if terms.context_subset is not None:
        context = request.encryption_context()
        return all(context.get(key) == value for key, value in terms.context_subset.items())
    return True
