"""The ``gcp:`` section of the server's config file: the Cloud KMS gRPC listener (off unless set), REST, tokens."""

from __future__ import annotations

from dataclasses import dataclass

from kubekms.server.gcp_auth import DEFAULT_AUDIENCES, GOOGLE_TOKEN_URI
from kubekms.server.gcp_names import DEFAULT_LOCATIONS, LOCATION_PATTERN

SETTINGS = ("listen", "rest_listen", "audiences", "token_uri", "locations")


@dataclass(frozen=True)
class GcpSettings:
    """``listen``: HOST:PORT of the Cloud KMS gRPC API (TLS with the server's tls_cert/tls_key when set).

    ``rest_listen``: HOST:PORT of its REST/JSON mapping (``/v1/projects/...``), off unless set.

    ``audiences``: JWT ``aud`` values accepted (default ``https://cloudkms.googleapis.com/``,
    what Google's client libraries send whatever endpoint they are pointed at).

    ``token_uri``: the URL by which clients reach ``POST /token`` on ``rest_listen`` (the ``token_uri`` to
    put in their key files); the token endpoint is off unless set.

    ``locations``: the location ids served (ListLocations; CreateKeyRing and GenerateRandomBytes elsewhere are
    NOT_FOUND, as Cloud KMS answers them); default Cloud KMS's own. Key rings made before in other locations stay
    readable.
    """

    listen: str
    rest_listen: str | None = None
    audiences: tuple[str, ...] = DEFAULT_AUDIENCES
    token_uri: str | None = None
    locations: tuple[str, ...] = DEFAULT_LOCATIONS

    @property
    def token_audiences(self) -> tuple[str, ...]:
        """The ``aud`` of assertions the token endpoint takes: Go's clients send the key file's token_uri, Google's
        Python and Java libraries Google's token URL whatever the token_uri."""
        return (self.token_uri, GOOGLE_TOKEN_URI) if self.token_uri else ()

    @classmethod
    def from_config(cls, data: object) -> GcpSettings | None:
        """The parsed ``gcp:`` mapping, None when absent; a ValueError names the bad setting."""
        if data is None:
            return None
        if not isinstance(data, dict):
            raise ValueError(f"gcp must be a mapping ({', '.join(SETTINGS)})")
        unknown = sorted(set(data) - set(SETTINGS))
        if unknown:
            raise ValueError(f"gcp: unknown settings {', '.join(map(str, unknown))}")
        listen = data.get("listen")
        if not isinstance(listen, str) or not listen:
            raise ValueError("gcp.listen must be HOST:PORT")
        rest_listen = data.get("rest_listen")
        if rest_listen is not None and (not isinstance(rest_listen, str) or not rest_listen):
            raise ValueError("gcp.rest_listen must be HOST:PORT")
        audiences = data.get("audiences", list(DEFAULT_AUDIENCES))
        if not isinstance(audiences, list) or not audiences or not all(isinstance(a, str) and a for a in audiences):
            raise ValueError("gcp.audiences must be a non-empty list of strings")
        token_uri = data.get("token_uri")
        if token_uri is not None and (
            not isinstance(token_uri, str) or not token_uri.startswith(("https://", "http://"))
        ):
            raise ValueError(
                "gcp.token_uri must be the URL of the token endpoint, e.g. https://kms.internal:9444/token"
            )
        if token_uri and not rest_listen:
            raise ValueError("gcp.token_uri needs gcp.rest_listen: the token endpoint is served there")
        return cls(listen=listen, rest_listen=rest_listen, audiences=tuple(audiences), token_uri=token_uri,
                   locations=_locations(data.get("locations", list(DEFAULT_LOCATIONS))))  # fmt: skip


def _locations(value: object) -> tuple[str, ...]:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(item, str) and LOCATION_PATTERN.fullmatch(item) for item in value)
    ):
        raise ValueError("gcp.locations must be a non-empty list of location ids ([a-z0-9-]{1,63}), e.g. [global]")
    if len(set(value)) != len(value):
        raise ValueError("gcp.locations names a location twice")
    return tuple(value)
