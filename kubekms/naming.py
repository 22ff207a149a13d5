"""Naming rules every layer shares: what a key id is and what an alias may look like.

The keystore enforces them, the providers check them before a call leaves the process and
the wires parse key references with them; the wire-specific error each side raises is its own.
"""

from __future__ import annotations

import re
import uuid

ALIAS_PATTERN = re.compile(r"[a-zA-Z0-9:/_-]{1,255}")  # matched whole: "$" would allow a trailing newline


def is_key_id(value: str) -> bool:
    """A key id is a UUID in its canonical form (any case)."""
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def is_alias(alias: object) -> bool:
    """1-255 of [a-zA-Z0-9:/_-], not ending in ``/default``, not a key id."""
    return (
        isinstance(alias, str)
        and ALIAS_PATTERN.fullmatch(alias) is not None
        and not alias.endswith("/default")
        and not is_key_id(alias)
    )
