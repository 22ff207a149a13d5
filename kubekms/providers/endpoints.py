"""Checks of a configured endpoint URL common to the providers, before any request is made.

An endpoint is ``scheme://host[:port][/path]``. A user name or password in it (``https://user:pass@host``)
is refused: the providers authenticate with their credentials, aiohttp refused every request of such
an endpoint with a bare ValueError, and errors quoting the endpoint showed the password. A query or
fragment is refused: the providers append their paths to the endpoint, which then went into the query
or fragment, not the path. Errors show an endpoint without its user information.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from urllib.parse import urlsplit

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
