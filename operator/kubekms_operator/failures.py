"""One place that turns a failed reconciliation into a Synced reason and kopf's retry decision.

Retryable backend errors and dependencies that are not there yet retry with a growing
delay (never a hot loop); what a retry cannot fix is a PermanentError: the next spec
change or the drift timer tries again.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import kopf

from kubekms.errors import (
    AccessDenied,
    AlreadyExists,
    InvalidArgument,
    InvalidState,
    KMSError,
    LimitExceeded,
    NotFound,
    Throttled,
    Unauthenticated,
)
from kubekms_operator.backends import DependencyNotReady
from kubekms_operator.kube import StatusNotWritten
from kubekms_operator.reconcile import (
    AliasInUse,
    KeyGone,
    KeyTypeNotSupported,
    OwnedByOther,
    OwnerLeaving,
    PolicyNotSupported,
)
from kubekms_operator.spec import InvalidSpec, NotForKeyType

FIRST_DELAY = 5.0
MAX_DELAY = 300.0
# A missing or ambiguous KMSBackend, or refused credentials, are fixed by users editing
# objects (a KMSBackend, a Secret): look again at least every 30 s rather than backing off
# to minutes.
DEPENDENCY_MAX_DELAY = 30.0


@dataclass(frozen=True)
class Failure:
    reason: str
    message: str
    retryable: bool
    key_unusable: bool  # Ready must turn False (not only Synced)
    max_delay: float = MAX_DELAY

    def backoff(self, retry: int) -> float:
        return min(FIRST_DELAY * 2.0 ** min(retry, 10), self.max_delay)

    def for_kopf(self, retry: int) -> kopf.TemporaryError | kopf.PermanentError:
        if self.retryable:
            return kopf.TemporaryError(f"{self.reason}: {self.message}", delay=self.backoff(retry))
        return kopf.PermanentError(f"{self.reason}: {self.message}")


def classify(error: Exception) -> Failure | None:
    """The Failure for an error the operator understands; None for a bug (kopf's own retry applies)."""
    if isinstance(error, NotForKeyType):  # the key itself is fine: Ready stays as it is
        return Failure("NotForKeyType", str(error), retryable=False, key_unusable=False)
    if isinstance(error, InvalidSpec):
        return Failure("InvalidSpec", str(error), retryable=False, key_unusable=True)
    if isinstance(error, DependencyNotReady):
        return Failure(error.reason, str(error), retryable=True, key_unusable=False, max_delay=DEPENDENCY_MAX_DELAY)
    if isinstance(error, StatusNotWritten):
        return Failure("StatusNotWritten", str(error), retryable=True, key_unusable=False)
    if isinstance(error, OwnerLeaving):  # fixed by the owner's deletion finishing: look again soon
        return Failure("OwnerLeaving", str(error), retryable=True, key_unusable=False, max_delay=DEPENDENCY_MAX_DELAY)
    if isinstance(error, OwnedByOther):
        return Failure("OwnedByOther", str(error), retryable=False, key_unusable=True)
    if isinstance(error, AliasInUse):
        # Not retried on a timer of its own: the drift timer looks again, a spec change at once.
        return Failure("AliasInUse", str(error), retryable=False, key_unusable=True)
    if isinstance(error, PolicyNotSupported):
        return Failure("PolicyNotSupported", str(error), retryable=False, key_unusable=True)
    if isinstance(error, KeyTypeNotSupported):
        return Failure("KeyTypeNotSupported", str(error), retryable=False, key_unusable=True)
    if isinstance(error, KeyGone):
        return Failure("KeyGone", str(error), retryable=False, key_unusable=True)
    if isinstance(error, KMSError):
        return _classify_backend(error)
    return None


def at_deletion(failure: Failure) -> Failure:
    """A failure to schedule a KMSKey's key for deletion, always retried: kopf then keeps the finalizer, so no
    key is left behind by a deletion that did not happen (a permanent failure let kopf drop it). A refusal
    says what the user may change; each retry reads the object afresh."""
    if failure.retryable:
        return failure
    return replace(
        failure,
        retryable=True,
        max_delay=DEPENDENCY_MAX_DELAY,
        message=f"{failure.message}; the key is not scheduled for deletion and the KMSKey waits: change its spec "
        "(e.g. a pendingWindowDays the backend takes) or set deletionPolicy Retain to leave the key as it is",
    )


def _classify_backend(error: KMSError) -> Failure:
    detail = f"{error} ({error.identifier})"
    if isinstance(error, Throttled):
        return Failure("Throttled", detail, retryable=True, key_unusable=False)
    if error.retryable:
        return Failure("BackendUnavailable", detail, retryable=True, key_unusable=False)
    if isinstance(error, Unauthenticated | AccessDenied):
        # Credentials can be fixed in the Secret: retry.
        return Failure("AccessDenied", detail, retryable=True, key_unusable=False, max_delay=DEPENDENCY_MAX_DELAY)
    if isinstance(error, NotFound):
        return Failure("KeyNotFound", detail, retryable=False, key_unusable=True)
    if isinstance(error, AlreadyExists):
        return Failure("Conflict", detail, retryable=False, key_unusable=False)
    if isinstance(error, LimitExceeded):
        return Failure("LimitExceeded", detail, retryable=False, key_unusable=True)
    if isinstance(error, InvalidArgument | InvalidState):
        return Failure("BackendRejected", detail, retryable=False, key_unusable=False)
    return Failure("BackendError", detail, retryable=False, key_unusable=False)
