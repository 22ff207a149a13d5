"""An AK/SK credential pair: what a client signs with and what a server checks against.

In the core because both sides use it: the REST providers sign with it, the v1.0 wire's
signing code computes signatures from it, the operator builds it from a Secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from kubekms.errors import InvalidArgument
from kubekms.yamlfile import read_yaml


@dataclass(frozen=True)
class Credentials:
    """An AK/SK pair (plus optional STS token). ``repr`` never shows the secret."""

    access_key: str
    secret_key: str = field(repr=False)
    security_token: str = field(default="", repr=False)

    @classmethod
    def from_mapping(cls, data: object, *, source: str) -> Credentials:
        if not isinstance(data, dict):
            raise InvalidArgument(f"credentials in {source} must be a mapping with access_key and secret_key")
        access_key, secret_key = data.get("access_key"), data.get("secret_key")
        if not isinstance(access_key, str) or not access_key or not isinstance(secret_key, str) or not secret_key:
            raise InvalidArgument(f"credentials in {source} need non-empty string fields access_key and secret_key")
        token = data.get("security_token") or ""
        return cls(access_key=access_key, secret_key=secret_key, security_token=str(token))

    @classmethod
    def from_file(cls, path: Path) -> Credentials:
        return cls.from_mapping(read_yaml(path, "credentials file", error=InvalidArgument), source=str(path))
