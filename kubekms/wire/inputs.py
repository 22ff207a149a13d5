"""The one strict set of parsers for everything a client sends, shared by every wire.

A request reaches a handler only through these: the body as a bounded JSON object whose every
string is valid Unicode text (no lone UTF-16 surrogates), header values as printable ASCII,
integers as ASCII digits within bounds, strings within length limits, identifiers matched
whole. Each refusal is an :class:`~kubekms.errors.InvalidArgument` (or the error class the
caller names) with a precise message, never a ``ValueError``, ``RecursionError`` or
``UnicodeEncodeError`` escaping into a 500.

Why each rule exists:
- ``json.loads`` recurses per nesting level (RecursionError on deep input) and turns
  ``"\\ud800"`` into a ``str`` that cannot be encoded back to UTF-8 (SQLite, HMAC, logs fail);
- ``int()`` accepts any Unicode digit (``"²"``.isdigit() is True, ``int("²")`` fails,
  ``int("٣")`` is 3) and refuses strings of more than 4,300 digits with a ValueError;
- aiohttp and the server's front decode header bytes that are not UTF-8 into lone surrogates, and
  ``hmac.compare_digest`` refuses non-ASCII strings with a TypeError;
- ``re.match(r"^...$")`` accepts a trailing newline: identifiers use ``fullmatch``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from aiohttp import web

from kubekms.errors import InvalidArgument, KMSError, Reason
from kubekms.naming import is_clean_text as is_clean_text  # re-exported: the wires and the CLI check with it

MAX_JSON_DEPTH = 8  # the deepest request of either wire nests 3 levels (tags: body -> list -> object)
MAX_JSON_NODES = 20_000  # values in one body (a 64 KiB body of "[0,0,...]" holds ~32,000)
MAX_INTEGER_DIGITS = 20  # beyond 64 bits: every integer field is far smaller
INT64_MAX = 2**63 - 1
MAX_HEADER_CHARS = 8192

ErrorFactory = Callable[[str], KMSError]
_INTEGER_TEXT = re.compile(r"-?[0-9]{1,20}")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e\t]*")


class MalformedJson(InvalidArgument):
    """The body is not a JSON object within the limits (AWS: SerializationException)."""

    default_reason = Reason.MALFORMED_BODY


# ---------------------------------------------------------------------------- text


def text(
    value: object,
    name: str,
    *,
    max_chars: int,
    min_chars: int = 0,
    error: ErrorFactory = InvalidArgument,
) -> str:
    """A string of ``min_chars`` to ``max_chars`` characters, valid Unicode text."""
    if not isinstance(value, str):
        raise error(f"{name} must be a string, got {describe(value)}")
    if not min_chars <= len(value) <= max_chars:
        raise error(f"{name} must be {min_chars} to {max_chars} characters long, got {len(value)}")
    if not is_clean_text(value):
        raise error(f"{name} is not valid Unicode text (lone surrogate)")
    return value


def identifier(value: object, name: str, pattern: re.Pattern[str], *, error: ErrorFactory = InvalidArgument) -> str:
    """A string matched **whole** by ``pattern`` (never ``match`` + ``$``: that allows a trailing newline)."""
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise error(f"invalid {name}")
    return value


def describe(value: object) -> str:
    """A value's kind for an error message, never the value itself (it may be huge or hostile)."""
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return {int: "an integer", float: "a number", list: "a list", dict: "an object"}.get(type(value), "a value")


# ---------------------------------------------------------------------------- integers


def integer(
    value: object,
    name: str,
    bounds: tuple[int, int],
    *,
    allow_text: bool,
    error: ErrorFactory = InvalidArgument,
) -> int:
    """A JSON integer (never a bool or a float) or, when ``allow_text``, ASCII decimal digits; within ``bounds``."""
    low, high = bounds
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif allow_text and isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
        number = int(value)
    if number is None:
        kind = "an integer or a string of ASCII digits" if allow_text else "an integer"
        raise error(f"{name} must be {kind}, got {describe(value)}")
    if not low <= number <= high:
        raise error(f"{name} must be from {low} to {high}")
    return number


def marker(value: object, name: str, *, error: ErrorFactory = InvalidArgument) -> int | None:
    """A paging marker: absent/empty, or ASCII digits of an offset that fits in 64 bits."""
    if value is None or value == "":
        return None
    return integer(value, name, (0, INT64_MAX), allow_text=True, error=error)


# ---------------------------------------------------------------------------- JSON bodies


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise ValueError("integer too long")
    return int(digits)


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


# one decoder for every body: json.loads with keyword arguments builds a new one per call (3.5 vs 1.8 µs)
_JSON_WHITESPACE = " \t\n\r"  # JSON's whitespace (decode() allows it around the value; no other kind)
_DECODER = json.JSONDecoder(parse_int=_bounded_int, parse_constant=_no_constant)


def json_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object; empty means ``{}``. Anything else, or beyond the limits, is MalformedJson."""
    if not raw.strip():
        return {}
    try:
        text = raw.decode("utf-8")
        if text.startswith("{"):  # the SDKs' bodies: decode() without its two whitespace matches (0.9 -> 0.4 µs)
            data, end = _DECODER.raw_decode(text)
            if text[end:].strip(_JSON_WHITESPACE):
                raise ValueError("extra data after the JSON object")
        else:
            data = _DECODER.decode(text)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise MalformedJson("the request body is not valid JSON (UTF-8, integers of at most 20 digits)") from None
    if not isinstance(data, dict):
        raise MalformedJson("the request body must be a JSON object")
    if not _within_limits_by_its_bytes(raw):
        _check_tree(data)
    return data


def _within_limits_by_its_bytes(raw: bytes) -> bool:
    """True when the raw body alone proves what :func:`_check_tree` checks (the SDKs' small flat bodies).

    ASCII without a ``\\u`` escape decodes to ASCII strings only (no lone surrogate); nesting cannot
    exceed the count of ``{`` and ``[`` (those inside strings only count too many); every value takes
    at least one byte and a separator, so a body shorter than twice the node limit holds fewer values.
    """
    return (
        len(raw) < 2 * MAX_JSON_NODES
        and raw.isascii()
        and b"\\u" not in raw
        and raw.count(b"{") + raw.count(b"[") <= MAX_JSON_DEPTH
    )


def _check_tree(root: object) -> None:
    """Depth, size and text of every value, iteratively (a recursive walk is what deep input attacks)."""
    pending: list[tuple[object, int]] = [(root, 1)]
    nodes = 0
    while pending:
        value, depth = pending.pop()
        nodes += 1
        if nodes > MAX_JSON_NODES:
            raise MalformedJson(f"the request body holds more than {MAX_JSON_NODES} values")
        if isinstance(value, str):
            if not is_clean_text(value):
                raise MalformedJson("the request body holds a string that is not valid Unicode (lone surrogate)")
        elif isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise MalformedJson(f"the request body nests deeper than {MAX_JSON_DEPTH} levels")
            if isinstance(value, dict):
                for key, item in value.items():
                    if not is_clean_text(key):
                        raise MalformedJson("the request body holds a name that is not valid Unicode")
                    pending.append((item, depth + 1))
            else:
                pending.extend((item, depth + 1) for item in value)


# ---------------------------------------------------------------------------- headers and request targets


def header(headers: Mapping[str, str], name: str, *, error: ErrorFactory) -> str | None:
    """A header's value as printable ASCII (absent: None); anything else is ``error``."""
    value = headers.get(name)
    if value is None:
        return None
    if not is_printable_ascii(value):
        raise error(f"header {name} must be printable ASCII")
    return value


def is_printable_ascii(value: str) -> bool:
    """A header value's rule: printable ASCII and tabs, at most MAX_HEADER_CHARS characters."""
    return len(value) <= MAX_HEADER_CHARS and _printable(value)


def _printable(value: str) -> bool:
    """Printable ASCII and tabs. isprintable() on ASCII is [\x20-\x7e]: the regular expression (3 times the
    cost) only for values with tabs."""
    return (value.isascii() and value.isprintable()) or _PRINTABLE_ASCII.fullmatch(value) is not None


def authorization(headers: Mapping[str, str], algorithm: str, *, error: ErrorFactory) -> dict[str, str]:
    """The ``Authorization`` header ``<algorithm> Name=value, Name=value`` as fields by name.

    Missing, not printable ASCII or naming another algorithm: ``error``. Values are as sent
    (unstripped); items without ``=`` are skipped. Both wires' signature checks start here.
    """
    value = header(headers, "Authorization", error=error)
    if not value:
        raise error("missing Authorization header")
    scheme, _, rest = value.strip().partition(" ")
    if scheme != algorithm:
        raise error(f"Authorization must use {algorithm}")
    fields: dict[str, str] = {}
    for item in rest.split(","):
        name, sep, field_value = item.strip().partition("=")
        if sep:
            fields[name] = field_value
    return fields


def request_target(raw_path: str, *, error: ErrorFactory) -> str:
    """The request target as sent (path and query): printable ASCII without spaces (RFC 9112)."""
    if not raw_path.startswith("/") or not _printable(raw_path) or " " in raw_path:
        raise error("the request target must be printable ASCII")
    return raw_path


# ---------------------------------------------------------------------------- bodies


class BodyTooLarge(InvalidArgument):
    """The body exceeds the server's limit: refused unread, and the connection is closed, not drained."""

    default_reason = Reason.BODY_TOO_LARGE


class ReceivedBody(Protocol):
    """What the HTTP front tells of a request's body (:class:`kubekms.server.http_messages.HttpRequest`)."""

    @property
    def body(self) -> bytes: ...

    @property
    def body_too_large(self) -> bool: ...


def received_body(request: ReceivedBody, max_bytes: int) -> bytes:
    """The whole body the front read, at most ``max_bytes`` whether declared (Content-Length) or chunked."""
    if request.body_too_large or len(request.body) > max_bytes:
        raise BodyTooLarge(f"request body larger than {max_bytes} bytes")
    return request.body


async def read_body(request: web.BaseRequest, max_bytes: int) -> bytes:
    """The whole body of an aiohttp request (the console's), at most ``max_bytes`` (declared or chunked)."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise BodyTooLarge(f"request body larger than {max_bytes} bytes")
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise BodyTooLarge(f"request body larger than {max_bytes} bytes") from None
