"""The keystore's root of trust: a 32-byte key file that seals every key version at rest."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from kubekms.errors import AccessDenied, Reason
from kubekms.private_files import open_private, refuse_links

ROOT_KEY_SIZE = 32
_NONCE_SIZE = 12
_TAG_SIZE = 16


class KeystoreSetupError(RuntimeError):
    """The keystore cannot start (missing or unsafe root key, foreign database...)."""


class RootKeyNotInstalled(AccessDenied, KeystoreSetupError):
    """The project's keystore (in a shared database) was made with a root key this server does not hold.

    A refusal of the project's requests when it is opened on demand (403, not an internal error), and a setup
    error at start.
    """

    default_reason = Reason.PROJECT_DENIED


def load_root_key(path: Path, *, init: bool) -> tuple[bytes, bool]:
    """Read the root key, creating it (mode 0600) only when ``init`` is set; also whether this call created it."""
    created = False
    refuse_links(path)  # a dangling link too: os.link would not replace it, and the read would follow it
    if not path.exists():
        if not init:
            raise KeystoreSetupError(f"root key {path} does not exist; start once with --init to create it")
        created = _create_root_key(path)
    with os.fdopen(open_private(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as handle:  # a FIFO must not block it
        status = os.fstat(handle.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise KeystoreSetupError(f"root key {path} is not a regular file")
        mode = stat.S_IMODE(status.st_mode)
        if mode & 0o077:
            raise KeystoreSetupError(
                f"root key {path} has mode {mode:04o}; it must be readable by its owner only (0600)"
            )
        material = handle.read(ROOT_KEY_SIZE + 1)
    if len(material) != ROOT_KEY_SIZE:
        raise KeystoreSetupError(f"root key {path} must hold exactly {ROOT_KEY_SIZE} bytes")
    return material, created


def _create_root_key(path: Path) -> bool:
    """Write a new root key whole, then link it into place, so no reader ever sees a short file.

    A process killed mid-write leaves only its temporary file; of two processes creating it at once the
    link of the second fails and it reads the first one's key.
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(os.urandom(ROOT_KEY_SIZE))
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False  # another process created it first; it is read back by the caller
    finally:
        os.unlink(temporary)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return True


class Sealer:
    """AES-256-GCM under the root key, with the owner of each blob bound as associated data."""

    def __init__(self, root_key: bytes) -> None:
        self._cipher = AESGCM(root_key)

    def seal(self, material: bytes, context: str) -> bytes:
        nonce = os.urandom(_NONCE_SIZE)
        return nonce + self._cipher.encrypt(nonce, material, context.encode())

    def unseal(self, blob: bytes, context: str) -> bytes:
        try:
            if len(blob) < _NONCE_SIZE + _TAG_SIZE:  # cut short: AESGCM would refuse its nonce with a bare ValueError
                raise InvalidTag
            return self._cipher.decrypt(blob[:_NONCE_SIZE], blob[_NONCE_SIZE:], context.encode())
        except InvalidTag:
            raise KeystoreSetupError(
                f"sealed material for {context} does not open with this root key (wrong root key or corrupted store)"
            ) from None


def key_version_context(key_id: str, version: int) -> str:
    return f"kubekms/key-version/{key_id}/{version}"
