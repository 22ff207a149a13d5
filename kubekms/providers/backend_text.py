"""Text a backend answered (error messages, codes), made fit to pass on to callers.

Callers copy a KMSError's message into a KMSKey's status and Events (the operator), logs and
/status (the plugin) and a terminal (the CLI): a backend's text is cut to a few hundred
characters and its control and format characters (ESC, newlines, bidi overrides) escaped.
"""

from __future__ import annotations

MAX_MESSAGE = 500
MAX_CODE = 64


def backend_text(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` with unprintable characters escaped (``\\x1b``, ``\\n``, ``\\u202e``), cut to ``limit`` characters."""
    if len(text) <= limit and text.isprintable():
        return text
    head = text[: limit + 1]
    escaped = "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in head)
    if len(escaped) <= limit and len(text) <= limit:
        return escaped
    return f"{escaped[:limit]}... ({len(text):,} characters in all)"
