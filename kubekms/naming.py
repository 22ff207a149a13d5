"""Naming rules every layer shares: what a key id is, what an alias may look like, which text is storable.

The keystore enforces them, the providers check them before a call leaves the process and
the wires parse key references with them; the wire-specific error each side raises is its own.
"""

from __future__ import annotations

import re

ALIAS_PATTERN = re.compile(r"[a-zA-Z0-9:/_-]{1,255}")  # matched whole: "$" would allow a trailing newline
# what str(uuid.UUID(value)) == value.lower() accepts, in a tenth of its time (every request asks, several times)
_KEY_ID_PATTERN = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def is_key_id(value: str) -> bool:
    """A key id is a UUID in its canonical form (any case)."""
    return _KEY_ID_PATTERN.fullmatch(value) is not None


def is_alias(alias: object) -> bool:
    """1-255 of [a-zA-Z0-9:/_-], not ending in ``/default``, not a key id."""
    return (
        isinstance(alias, str)
        and ALIAS_PATTERN.fullmatch(alias) is not None
        and not alias.endswith("/default")
        and not is_key_id(alias)
    )


def is_clean_text(value: str) -> bool:
    """True when ``value`` encodes to UTF-8: no lone surrogates (what aiohttp and json make of bad input)."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode's Cc: C0, DEL and C1


def has_control_character(value: str) -> bool:
    """True when ``value`` holds a control character (a tag may not: AWS's and Huawei's rule, and a terminal's)."""
    return _CONTROL_CHARACTER.search(value) is not None
