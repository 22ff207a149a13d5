"""A real PostgreSQL 15 on loopback in a temporary directory, for tests and benchmarks.

Debian's ``postgresql`` package (installed with apt-get when missing and running as root);
the server refuses to run as root, so it runs as the packaged ``postgres`` user in its own
data directory, started and stopped with ``pg_ctl`` (the way the control plane runs etcd).
It serves TLS with a certificate of a fresh dev CA (``ca_cert``); :attr:`Postgres.url`
verifies it (``sslmode=verify-full``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from kubekms.devenv.pki import generate_pki
from kubekms.devenv.processes import StartError, free_port, log_tail

BIN_DIR = Path("/usr/lib/postgresql/15/bin")
SUPERUSER = "kubekms"
_SERVICE_USER = "postgres"


@dataclass(frozen=True)
class Postgres:
    directory: Path
    port: int
    ca_cert: Path

    def database_url(self, database: str = "postgres") -> str:
        """Over TLS, the server's certificate checked against the dev CA (host 127.0.0.1 in its SANs)."""
        return (
            f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}?sslmode=verify-full&sslrootcert={self.ca_cert}"
        )

    @property
    def url(self) -> str:
        return self.database_url()

    def dump_database(self, name: str) -> bytes:
        """Every row of every schema of one database as ``pg_dump`` writes it (bytea columns in hex)."""
        return subprocess.run(
            [str(BIN_DIR / "pg_dump"), "--dbname", self.database_url(name)],
            check=True,
            capture_output=True,
            timeout=60,
        ).stdout


def ensure_installed() -> None:
    if (BIN_DIR / "pg_ctl").exists():
        return
    if os.geteuid() != 0:
        raise StartError(f"PostgreSQL 15 is not installed ({BIN_DIR}); run: apt-get install -y postgresql")
    subprocess.run(["apt-get", "install", "-y", "postgresql"], check=True, capture_output=True, timeout=600)


def _as_service_user(argv: Sequence[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run as the packaged ``postgres`` user then."""
    return ["runuser", "-u", _SERVICE_USER, "--", *argv] if os.geteuid() == 0 else list(argv)


def _run(argv: Sequence[str], log: Path) -> None:
    result = subprocess.run(_as_service_user(argv), capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise StartError(f"{argv[0]} failed: {result.stderr.strip()}\n{log_tail(log) if log.exists() else ''}")


@contextlib.contextmanager
def postgres() -> Iterator[Postgres]:
    """Start a fresh PostgreSQL server (trust auth, loopback only); stop it and delete its data at exit."""
    ensure_installed()
    directory = Path(tempfile.mkdtemp(prefix="kubekms-pg-"))
    pki = generate_pki(directory / "pki")
    tls_cert, tls_key = directory / "server.crt", directory / "server.key"
    shutil.copyfile(pki.serving_cert, tls_cert)
    shutil.copyfile(pki.serving_key, tls_key)
    tls_key.chmod(0o600)  # PostgreSQL refuses a key others can read
    if os.geteuid() == 0:
        service = pwd.getpwnam(_SERVICE_USER)
        for path in (directory, tls_cert, tls_key):
            os.chown(path, service.pw_uid, service.pw_gid)
    data, log, port = directory / "data", directory / "log", free_port()
    pg_ctl = str(BIN_DIR / "pg_ctl")
    try:
        _run([str(BIN_DIR / "initdb"), "-D", str(data), "-A", "trust", "-U", SUPERUSER, "--no-sync"], log)
        options = (
            f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off"
            f" -c ssl=on -c ssl_cert_file={tls_cert} -c ssl_key_file={tls_key}"
        )
        _run([pg_ctl, "-D", str(data), "-o", options, "-l", str(log), "-w", "-t", "60", "start"], log)
        try:
            yield Postgres(directory=directory, port=port, ca_cert=pki.ca_cert)
        finally:
            _run([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], log)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
