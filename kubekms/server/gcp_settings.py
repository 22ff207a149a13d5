"""The ``gcp:`` section of the server's config file: the Cloud KMS gRPC listener (off unless set)."""

from __future__ import annotations

from dataclasses import dataclass

from kubekms.server.gcp_auth import DEFAULT_AUDIENCES


@dataclass(frozen=True)
class GcpSettings:
    """``listen``: HOST:PORT of the Cloud KMS gRPC API (TLS with the server's tls_cert/tls_key when set).

    ``rest_listen``: HOST:PORT of its REST/JSON mapping (``/v1/projects/...``), off unless set.

    ``audiences``: JWT ``aud`` values accepted (default ``https://cloudkms.googleapis.com/``,
    what Google's client libraries send whatever endpoint they are pointed at).
    """

    listen: str
    rest_listen: str | None = None
    audiences: tuple[str, ...] = DEFAULT_AUDIENCES

    @classmethod
    def from_config(cls, data: object) -> GcpSettings | None:
        """The parsed ``gcp:`` mapping, None when absent; a ValueError names the bad setting."""
        if data is None:
            return None
        if not isinstance(data, dict):
            raise ValueError("gcp must be a mapping (listen, rest_listen, audiences)")
        unknown = sorted(set(data) - {"listen", "rest_listen", "audiences"})
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
        return cls(listen=listen, rest_listen=rest_listen, audiences=tuple(audiences))
