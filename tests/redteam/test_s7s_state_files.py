"""Red team (H16): symbolic links planted where the server keeps its state, and the state directory's mode.

An attacker who may write into a project's directory (or the state directory) plants a link before a start;
the server must refuse to start naming the path, and leave the link's target as it was.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from kubekms.keystore.store import Keystore
from kubekms.server.config import ServerConfig
from kubekms.server.console.database import SqliteConsoleDatabase
from kubekms.server.runner import serve

VICTIM_BYTES = b"v" * 32  # a 32-byte file elsewhere: the size of a root key, so only the link check can refuse it


def victim_file(tmp_path: Path) -> Path:
    victim = tmp_path / "elsewhere" / "victim"
    victim.parent.mkdir()
    victim.write_bytes(VICTIM_BYTES)
    victim.chmod(0o600)
    return victim


def made_keystore(tmp_path: Path) -> Path:
    directory = tmp_path / "state" / "p1"
    Keystore(directory, init=True)._db.close()
    return directory


@pytest.mark.parametrize("name", ["root.key", "keystore.db", "keystore.db-changes", "keystore.db-wal"])
def test_a_link_planted_at_a_keystore_file_is_refused_not_followed(tmp_path: Path, name: str) -> None:
    directory = made_keystore(tmp_path)
    victim = victim_file(tmp_path)
    planted = directory / name
    planted.unlink(missing_ok=True)
    planted.symlink_to(victim)
    with pytest.raises(OSError, match=f"{planted}.*symbolic link"):
        Keystore(directory)
    assert victim.read_bytes() == VICTIM_BYTES
    assert not (victim.parent / "victim-wal").exists()


def test_a_root_key_link_planted_in_a_new_project_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "state" / "p2"
    directory.mkdir(parents=True, mode=0o700)
    victim = victim_file(tmp_path)
    (directory / "root.key").symlink_to(victim)
    with pytest.raises(OSError, match=r"root\.key.*symbolic link"):
        Keystore(directory, init=True)
    assert not (directory / "keystore.db").exists()


def test_a_link_planted_at_the_console_sessions_database_is_refused(tmp_path: Path) -> None:
    victim = victim_file(tmp_path)
    planted = tmp_path / "console-sessions.db"
    planted.symlink_to(victim)
    with pytest.raises(OSError, match=f"{planted}.*symbolic link"):
        SqliteConsoleDatabase(planted)
    assert victim.read_bytes() == VICTIM_BYTES


def server_config(tmp_path: Path, state: Path) -> Path:
    """A config naming ``state``; the server refuses it before reading anything else."""
    config_file = tmp_path / "server.yaml"
    config_file.write_text(f"state_dir: {state}\nprincipals_file: principals.yaml\nlisten: 127.0.0.1:1\n")
    return config_file


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702, 0o720])
def test_a_state_dir_others_may_write_is_refused_at_start(tmp_path: Path, mode: int) -> None:
    state = tmp_path / "state"
    state.mkdir()
    state.chmod(mode)
    with pytest.raises(OSError, match=f"state_dir {state} has mode {mode:04o}"):
        asyncio.run(serve(ServerConfig.load(server_config(tmp_path, state)), init=False))
    assert os.listdir(state) == []


def test_a_state_dir_another_user_owns_is_refused_at_start(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a directory to another user needs root")
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, 65534, 65534)  # nobody: could plant links in it
    with pytest.raises(OSError, match=f"state_dir {state} is owned by uid 65534"):
        asyncio.run(serve(ServerConfig.load(server_config(tmp_path, state)), init=False))


def test_a_new_state_dir_and_project_dir_are_private(tmp_path: Path) -> None:
    directory = made_keystore(tmp_path)
    assert directory.stat().st_mode & 0o777 == 0o700
