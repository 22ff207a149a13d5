"""Why an envelope operation failed, as a few classes a caller (and the CLI) can act on.

Messages are one line, name keys by provider and id, and never carry key material or plaintext.
"""

from __future__ import annotations


class EnvelopeError(Exception):
    """Base class; ``str(error)`` is the one-line reason."""


class InvalidMessage(EnvelopeError):
    """Not a message, tampered (header, body, signature or encryption context), or truncated."""


class ContextMismatch(EnvelopeError):
    """The message's encryption context lacks a pair the caller required."""


class NoKeyCanDecrypt(EnvelopeError):
    """None of the message's encrypted data keys could be unwrapped by any configured backend."""


class KeyUnusable(EnvelopeError):
    """A key asked for on encryption is disabled, pending deletion, unknown or not allowed."""


class InvalidRequest(EnvelopeError):
    """Bad arguments: an unknown backend, a malformed key reference or encryption context."""


class BackendUnavailable(EnvelopeError):
    """A backend could not be reached or throttled us; repeating may succeed."""
