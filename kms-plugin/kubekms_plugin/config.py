"""The plugin's configuration: one YAML file, every field also a flag, validated at start.

Credentials are never fields or flags themselves: only the path of a credentials file (for
provider gcp a service-account key JSON; without one, Application Default Credentials).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubekms.providers import PROVIDERS, BackendConfig
from kubekms.yamlfile import read_yaml_mapping


class ConfigError(ValueError):
    """The configuration is invalid; the message names the field and what is wrong."""


_GCP_KEY_RING = re.compile(r"[a-zA-Z0-9_-]{1,63}")
_GCP_LOCATION = re.compile(r"[a-z0-9-]{1,63}")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
MAX_POLL_INTERVAL = 60.0
MAX_SOCKET_PATH = 107  # bytes of a Unix socket's path (sun_path holds 108 with the closing NUL, on Linux)


def parse_duration(name: str, value: object) -> float:
    """Seconds from a number or a string like ``500ms``, ``30s``, ``5m``, ``24h``."""
    if isinstance(value, bool):
        raise ConfigError(f"{name}: expected a duration such as 30s, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value).strip())
        if not match:
            raise ConfigError(f"{name}: expected a duration such as 30s, 5m or 24h, got {value!r}")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise ConfigError(f"{name}: must be greater than zero")
    return seconds


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}: expected a positive integer, got {value!r}")
    return value


@dataclass(frozen=True)
class KekPolicy:
    """Bounds of the local key-encryption keys (KEKs)."""

    cache_size: int = 1000  # unwrapped KEKs kept for Decrypt
    max_encryptions: int = 1_000_000  # Encrypt calls under one KEK before a new one
    max_age: float = 7 * 86400.0  # seconds a KEK is used for Encrypt


@dataclass(frozen=True)
class PluginConfig:
    socket: Path
    backend: BackendConfig
    key: str
    poll_interval: float = 30.0
    kek: KekPolicy = field(default_factory=KekPolicy)
    health_address: str = "127.0.0.1:8787"
    drain_timeout: float = 10.0

    @property
    def health_host_port(self) -> tuple[str, int]:
        host, _, port = self.health_address.rpartition(":")
        return host, int(port)


def build_config(data: dict[str, Any]) -> PluginConfig:
    """Validate a merged mapping (file values overlaid by flags) into a PluginConfig."""
    known = {"socket", "backend", "key", "poll_interval", "kek", "health_address", "drain_timeout"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown field(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    socket = data.get("socket")
    if not socket:
        raise ConfigError("socket: required (path of the Unix socket kube-apiserver connects to)")
    socket_path = Path(str(socket)).absolute()  # a relative path from the working directory, as the OS takes it
    size = len(os.fsencode(socket_path))
    if size > MAX_SOCKET_PATH:
        raise ConfigError(f"socket: {socket_path} is {size} bytes; a Unix socket path takes at most {MAX_SOCKET_PATH}")
    key = data.get("key")
    if not key or not isinstance(key, str):
        raise ConfigError("key: required (id or alias of the backend key that protects the cluster's data)")
    backend = _backend(data.get("backend") or {})
    poll_interval = parse_duration("poll_interval", data.get("poll_interval", 30))
    if poll_interval > MAX_POLL_INTERVAL:
        raise ConfigError(f"poll_interval: at most {MAX_POLL_INTERVAL:.0f}s, so rotations reach the apiserver quickly")
    kek_data = data.get("kek") or {}
    if not isinstance(kek_data, dict):
        raise ConfigError("kek: expected a mapping with cache_size, max_encryptions, max_age")
    unknown_kek = sorted(set(kek_data) - {"cache_size", "max_encryptions", "max_age"})
    if unknown_kek:
        raise ConfigError(f"kek: unknown field(s): {', '.join(unknown_kek)}")
    defaults = KekPolicy()
    kek = KekPolicy(
        cache_size=_positive_int("kek.cache_size", kek_data.get("cache_size", defaults.cache_size)),
        max_encryptions=_positive_int("kek.max_encryptions", kek_data.get("max_encryptions", defaults.max_encryptions)),
        max_age=parse_duration("kek.max_age", kek_data.get("max_age", defaults.max_age)),
    )
    health_address = str(data.get("health_address", "127.0.0.1:8787"))
    host, _, port = health_address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"health_address: expected host:port, got {health_address!r}")
    return PluginConfig(
        socket=socket_path,
        backend=backend,
        key=key,
        poll_interval=poll_interval,
        kek=kek,
        health_address=health_address,
        drain_timeout=parse_duration("drain_timeout", data.get("drain_timeout", 10)),
    )


def _backend(data: object) -> BackendConfig:
    if not isinstance(data, dict):
        raise ConfigError("backend: expected a mapping (provider, endpoint, project_id, credentials_file, ...)")
    fields = {"provider", "endpoint", "project_id", "region", "location", "key_ring", "credentials_file", "ca_file",
              "state_dir"}  # fmt: skip
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ConfigError(f"backend: unknown field(s): {', '.join(unknown)} (credentials go in credentials_file)")
    provider = data.get("provider")
    if provider not in PROVIDERS:
        raise ConfigError(f"backend.provider: one of {', '.join(sorted(PROVIDERS))}, got {provider!r}")
    if provider == "local" and not data.get("state_dir"):
        raise ConfigError("backend.state_dir: required for provider local")
    if provider == "kubekms" and not data.get("endpoint"):
        raise ConfigError("backend.endpoint: required for provider kubekms (the server's URL)")
    if provider == "gcp":
        _check_gcp(data)
    else:
        for name in ("location", "key_ring"):
            if data.get(name):
                raise ConfigError(f"backend.{name}: for provider gcp only (huaweicloud and aws take region)")
    credentials_file = data.get("credentials_file")
    if credentials_file and not Path(credentials_file).is_file():
        raise ConfigError(f"backend.credentials_file: {credentials_file} is not a readable file")

    def optional_path(name: str) -> Path | None:
        value = data.get(name)
        return Path(value) if value else None

    return BackendConfig(
        provider=provider,
        endpoint=str(data.get("endpoint") or ""),
        project_id=str(data.get("project_id") or "default"),
        region=str((data.get("location") or "global") if provider == "gcp" else (data.get("region") or "")),
        key_ring=str(data.get("key_ring") or ""),
        credentials_file=optional_path("credentials_file"),
        ca_file=optional_path("ca_file"),
        state_dir=optional_path("state_dir"),
    )


def _check_gcp(data: dict[str, Any]) -> None:
    """Cloud KMS names: ``projects/{project_id}/locations/{location}/keyRings/{key_ring}``."""
    project_id = data.get("project_id")
    if not isinstance(project_id, str) or not project_id:
        raise ConfigError("backend.project_id: required for provider gcp (the Google Cloud project of the key ring)")
    key_ring = data.get("key_ring")
    if not isinstance(key_ring, str) or not _GCP_KEY_RING.fullmatch(key_ring):
        raise ConfigError(f"backend.key_ring: required for provider gcp, a Cloud KMS key ring id "
                          f"([a-zA-Z0-9_-]{{1,63}}), got {key_ring!r}")  # fmt: skip
    location = data.get("location", "global")
    if not isinstance(location, str) or not _GCP_LOCATION.fullmatch(location):
        raise ConfigError(f"backend.location: a Cloud KMS location such as global or europe-west1, got {location!r}")
    if data.get("region"):
        raise ConfigError("backend.region: provider gcp takes location (e.g. global, europe-west1), not region")


def load_config(path: Path | None, overrides: dict[str, Any]) -> PluginConfig:
    """Read ``path`` (if any) and overlay flag values (``None`` = not given)."""
    data: dict[str, Any] = {}
    if path is not None:
        data = read_yaml_mapping(path, "config file", error=ConfigError, expected="a mapping of plugin settings")
    for dotted, value in overrides.items():
        if value is None:
            continue
        target = data
        *parents, leaf = dotted.split(".")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return build_config(data)
