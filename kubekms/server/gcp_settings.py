"""The ``gcp:`` section of the server's config file: the Cloud KMS gRPC listener (off unless set)."""

from __future__ import annotations

from dataclasses import dataclass

from kubekms.server.gcp_auth import DEFAULT_AUDIENCES


@dataclass(frozen=True)
class GcpSettings:
    """``listen``: HOST:PORT of the Cloud KMS gRPC API (TLS with the server's tls_cert/tls_key when set).

    ``audiences``: JWT ``aud`` values accepted (default ``https://cloudkms.googleapis.com/``,
    what Google's client libraries send whatever endpoint they are pointed at).
    """

    listen: str
    audiences: tuple[str, ...] = DEFAULT_AUDIENCES

    @classmethod
    def from_config(cls, data: object) -> GcpSettings | None:
        """The parsed ``gcp:`` mapping, None when absent; a ValueError names the bad setting."""
        if data is None:
            return None
        if not isinstance(data, dict):
            raise ValueError("gcp must be a mapping (listen, audiences)")
        unknown = sorted(set(data) - {"listen", "audiences"})
        if unknown:
            raise ValueError(f"gcp: unknown settings {', '.join(map(str, unknown))}")
        listen = data.get("listen")
        if not isinstance(listen, str) or not listen:
            raise ValueError("gcp.listen must be HOST:PORT")
        audiences = data.get("audiences", list(DEFAULT_AUDIENCES))
        if not isinstance(audiences, list) or not audiences or not all(isinstance(a, str) and a for a in audiences):
            raise ValueError("gcp.audiences must be a non-empty list of strings")
        return cls(listen=listen, audiences=tuple(audiences))
