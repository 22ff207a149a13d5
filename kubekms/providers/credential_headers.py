"""Whether a credential can travel in HTTP headers at all, checked before any request is made.

A Secret made with ``echo KEY | base64`` holds the access key with a trailing newline. Sent as is,
aiohttp refuses the header with a bare ValueError and botocore fails the request as an
HTTPClientError (read as an outage and retried); other control characters reach the server.
"""

from __future__ import annotations

from kubekms.credentials import Credentials
from kubekms.errors import Reason, Unauthenticated


def header_problem(credentials: Credentials) -> str | None:
    """Why the access key or token cannot be sent in a request header, or None; never the value itself."""
    for name, value in (("access_key", credentials.access_key), ("security_token", credentials.security_token)):
        if not all("!" <= char <= "~" for char in value):
            return (
                f"the credential's {name} must be printable ASCII without spaces or control characters "
                f"(a trailing newline, as `echo` leaves one?): it cannot be sent in a request header"
            )
    return None


def unusable_credential(problem: str) -> Unauthenticated:
    return Unauthenticated(problem, reason=Reason.CREDENTIAL_MISSING)


def check_header_safe(credentials: Credentials) -> None:
    problem = header_problem(credentials)
    if problem is not None:
        raise unusable_credential(problem)
