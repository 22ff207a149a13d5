"""The server's YAML configuration file (secrets live only in the principals file it names)."""

from __future__ import annotations

import contextlib
import math
import os
import resource
import stat
from dataclasses import dataclass, field
from pathlib import Path

from kubekms.server.console.settings import DEFAULTS as CONSOLE_DEFAULTS
from kubekms.server.console.settings import SESSIONS_FILE, ConsoleSettings
from kubekms.server.gcp_settings import GcpSettings
from kubekms.yamlfile import read_yaml_mapping


class ServerConfigError(ValueError):
    """The configuration file is missing or invalid."""


@dataclass(frozen=True)
class ServerConfig:
    host: str
    port: int
    state_dir: Path
    principals_file: Path
    audit_log: str = "-"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    cmk_limit: int = 1000
    maintenance_interval: float = 10.0
    max_body_bytes: int = 64 * 1024
    console: ConsoleSettings = CONSOLE_DEFAULTS
    gcp: GcpSettings | None = None  # the Cloud KMS gRPC API's listener (issue 16), off unless set
    workers: int = 1  # server processes on the one listener; the file's default is "auto" (the CPU count)
    # keystore rows in PostgreSQL instead of state_dir's SQLite files (root keys stay in state_dir);
    # the URL is a secret (password), so only the file naming it is configured, never logged
    database_url_file: Path | None = None
    # HTTP connections open at once in each worker; one more is closed at once (the file's default: "auto")
    max_connections: int = field(default_factory=lambda: connection_cap())

    @classmethod
    def load(cls, path: Path) -> ServerConfig:
        data = read_yaml_mapping(path, "config file", error=ServerConfigError)
        known = {"listen", "state_dir", "principals_file", "audit_log", "tls_cert", "tls_key", "cmk_limit",
                 "maintenance_interval", "max_body_bytes", "console", "gcp", "workers",
                 "database_url_file", "max_connections"}  # fmt: skip
        unknown = sorted(set(data) - known)
        if unknown:
            raise ServerConfigError(f"config file {path}: unknown settings {', '.join(unknown)}")
        base = path.parent

        def a_path(name: str, *, required: bool) -> Path | None:
            value = data.get(name)
            if value in (None, ""):
                if required:
                    raise ServerConfigError(f"config file {path}: {name} is required")
                return None
            if not isinstance(value, str):
                raise ServerConfigError(f"config file {path}: {name} must be a path string")
            return base / value

        def a_number(name: str, default: float, low: float) -> float:
            value = data.get(name, default)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < low:
                raise ServerConfigError(f"config file {path}: {name} must be a number >= {low}")
            return value

        host, port = parse_listen(str(data.get("listen", "127.0.0.1:8443")))
        tls_cert, tls_key = a_path("tls_cert", required=False), a_path("tls_key", required=False)
        if (tls_cert is None) != (tls_key is None):
            raise ServerConfigError(f"config file {path}: tls_cert and tls_key go together")
        audit_log = data.get("audit_log", "-")
        if not isinstance(audit_log, str) or not audit_log:
            raise ServerConfigError(f"config file {path}: audit_log must be a path or '-' for stdout")
        state_dir, principals_file = a_path("state_dir", required=True), a_path("principals_file", required=True)
        assert state_dir is not None and principals_file is not None
        try:
            console = ConsoleSettings.from_config(data.get("console"), sessions_file=state_dir / SESSIONS_FILE)
            gcp = GcpSettings.from_config(data.get("gcp"))
            if gcp is not None:
                parse_listen(gcp.listen)
        except ValueError as error:
            raise ServerConfigError(f"config file {path}: {error}") from None
        return cls(
            host=host,
            port=port,
            state_dir=state_dir,
            principals_file=principals_file,
            audit_log=audit_log if audit_log == "-" else str(base / audit_log),
            tls_cert=tls_cert,
            tls_key=tls_key,
            cmk_limit=int(a_number("cmk_limit", 1000, 1)),
            maintenance_interval=float(a_number("maintenance_interval", 10.0, 0.05)),
            max_body_bytes=int(a_number("max_body_bytes", 64 * 1024, 1024)),
            console=console,
            gcp=gcp,
            workers=parse_workers(data.get("workers", "auto"), path),
            database_url_file=a_path("database_url_file", required=False),
            max_connections=parse_max_connections(data.get("max_connections", "auto"), path),
        )

    def database_url(self) -> str | None:
        """The PostgreSQL URL read from ``database_url_file`` (None: SQLite); errors never quote it."""
        if self.database_url_file is None:
            return None
        try:
            url = self.database_url_file.read_text().strip()
            mode = stat.S_IMODE(os.stat(self.database_url_file).st_mode)
        except OSError as error:
            raise ServerConfigError(f"database_url_file {self.database_url_file}: {error.strerror}") from None
        if not url.startswith(("postgresql://", "postgres://")):
            raise ServerConfigError(f"database_url_file {self.database_url_file} must hold a postgresql:// URL")
        if mode & 0o007:  # its group may read it: a Secret volume's 0440 (the chart's) is kept from other users
            raise ServerConfigError(
                f"database_url_file {self.database_url_file} has mode {mode:04o}; it holds a password: chmod 600 it"
            )
        return url


def parse_workers(value: object, path: Path) -> int:
    """``auto`` (the CPUs available) or a whole number >= 1."""
    if value == "auto":
        return available_cpus()
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ServerConfigError(f"config file {path}: workers must be 'auto' or a whole number >= 1")
    return value


def parse_max_connections(value: object, path: Path) -> int:
    """``auto`` (from the process's descriptor limit: :func:`connection_cap`) or a whole number >= 1."""
    if value == "auto":
        return connection_cap()
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ServerConfigError(f"config file {path}: max_connections must be 'auto' or a whole number >= 1")
    return value


def connection_cap() -> int:
    """Three quarters of the descriptors a process may open (RLIMIT_NOFILE's soft limit, as the container or the
    service manager set it): the rest stays for its keystores' files, the audit log, the metrics files, the Cloud
    KMS listener and the console's connections, which the cap does not count."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 65536
    return max(1, soft * 3 // 4)


def available_cpus() -> int:
    """CPUs this process may use: its CPU affinity, capped by a cgroup v2 CPU quota (a container's CPU limit)."""
    count = len(os.sched_getaffinity(0))
    with contextlib.suppress(OSError, ValueError):
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()  # "max 100000" or "150000 100000"
        if quota != "max":
            count = min(count, max(1, math.ceil(int(quota) / int(period))))
    return count


def parse_listen(listen: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port``."""
    host, sep, port_text = listen.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ServerConfigError(f"listen must be HOST:PORT, got {listen!r}")
    return host.strip("[]"), int(port_text)
