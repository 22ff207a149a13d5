"""Files and directories the server keeps in its state: never through a symbolic link someone planted there."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

_SQLITE_SIDE_FILES = (
    "-wal",
    "-shm",
    "-journal",
)  # SQLite opens these beside its database, following links


class UnsafePathError(OSError):
    """A state path is a symbolic link, or a directory others may write (so links could be planted in it)."""


def refuse_links(*paths: Path) -> None:
    """Refuse the first of ``paths`` that is a symbolic link (absent paths pass).

    For files opened by code that cannot be given ``O_NOFOLLOW`` (SQLite, and the -wal/-shm files it makes
    beside its database); the private directory (:func:`refuse_shared_directory`) keeps the check from racing.
    """
    for path in paths:
        if path.is_symlink():
            raise UnsafePathError(errno.ELOOP, f"{path} is a symbolic link; the server never follows one there")


def open_private(path: Path, flags: int) -> int:
    """``os.open`` with ``O_NOFOLLOW`` (new files mode 0600): a planted link is refused, naming the path."""
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise UnsafePathError(
                errno.ELOOP, f"{path} is a symbolic link; the server never follows one there"
            ) from None
        raise


def create_private(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (a link at it is refused, never followed)."""
    try:
        os.close(open_private(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        refuse_links(path)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` as the whole of ``path``, mode 0600 (an existing file's too); a link at it is refused."""
    with os.fdopen(open_private(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)  # O_TRUNC keeps an existing file's mode
        handle.write(data)


def create_private_database(path: Path) -> None:
    """A SQLite database file, created 0600 if missing; refused when it, or a file SQLite opens beside it, is a link."""
    create_private(path)
    refuse_links(*(path.with_name(path.name + suffix) for suffix in _SQLITE_SIDE_FILES))


def refuse_shared_directory(path: Path, what: str) -> None:
    """Refuse a directory that another user owns, or that group or others may write: they could plant links in it."""
    status = path.stat()
    if status.st_uid != os.geteuid():
        raise UnsafePathError(
            errno.EPERM, f"{what} {path} is owned by uid {status.st_uid}, not this server's uid {os.geteuid()}"
        )
    mode = stat.S_IMODE(status.st_mode)
    if mode & 0o022:
        raise UnsafePathError(
            errno.EPERM, f"{what} {path} has mode {mode:04o}; others could plant links in it: chmod 700 it"
        )
