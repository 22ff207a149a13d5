"""Checks of a configured endpoint URL common to the providers, before any request is made.

An endpoint is ``scheme://host[:port][/path]``. A user name or password in it (``https://user:pass@host``)
is refused: the providers authenticate with their credentials, aiohttp refused every request of such
an endpoint with a bare ValueError, and errors quoting the endpoint showed the password. A query or
fragment is refused: the providers append their paths to the endpoint, which then went into the query
or fragment, not the path. An endpoint without a host, with a port that is no number of 1-65535 or with
spaces or control characters (a YAML block scalar's newline) is refused: aiohttp raised a bare ValueError
at every call. Errors show an endpoint without its user information.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from urllib.parse import SplitResult, urlsplit

from kubekms.errors import InvalidArgument


def shown_endpoint(endpoint: str) -> str:
    """The endpoint as errors may quote it: without user information, at most 200 characters."""
    scheme, separator, rest = endpoint.partition("://")
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rpartition("@")[2]
    shown = f"{scheme}{separator}{authority}{slash}{path}" if separator else endpoint.rpartition("@")[2]
    return shown[:200]


def ca_bundle(path: Path) -> bytes:
    """The PEM bundle at ``path``, checked to load as trust anchors (InvalidArgument naming the file otherwise)."""
    try:
        data = path.read_bytes()
        ssl.create_default_context(cadata=data.decode("ascii"))
    except OSError as error:
        raise InvalidArgument(f"cannot load the CA bundle {path}: {error.strerror or error}") from None
    except (ssl.SSLError, UnicodeDecodeError, ValueError):
        raise InvalidArgument(f"cannot load the CA bundle {path}: it holds no PEM certificate") from None
    return data


def check_endpoint(endpoint: str, provider: str) -> None:
    """Refuse user information, a query or a fragment in ``endpoint`` (InvalidArgument)."""
    try:
        parts = urlsplit(endpoint)
    except ValueError:
        raise InvalidArgument(f"provider {provider!r}: endpoint {shown_endpoint(endpoint)!r} is not a URL") from None
    if "@" in parts.netloc:
        raise InvalidArgument(
            f"provider {provider!r}: the endpoint {shown_endpoint(endpoint)!r} carries a user name or password; "
            "give credentials in the credentials file or Secret, never in the URL"
        )
    if "?" in endpoint or "#" in endpoint:
        raise InvalidArgument(
            f"provider {provider!r}: the endpoint {shown_endpoint(endpoint)!r} has a query or fragment; "
            "give scheme://host[:port][/path]"
        )
    # aiohttp raised a bare ValueError at every call for a bad port; urlsplit drops tabs and newlines silently
    if not endpoint.isprintable() or " " in endpoint or not parts.hostname or not _port_ok(parts):
        raise InvalidArgument(
            f"provider {provider!r}: the endpoint {shown_endpoint(endpoint)!r} is not scheme://host[:port][/path] "
            "(a host, a port of 1-65535, no spaces or control characters)"
        )


def _port_ok(parts: SplitResult) -> bool:
    try:
        return parts.port is None or parts.port > 0
    except ValueError:  # not a number, or beyond 65535
        return False
