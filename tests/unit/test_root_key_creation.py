"""The root key file is created whole or not at all, by exactly one of the processes racing to create it."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

from kubekms.keystore.rootkey import ROOT_KEY_SIZE, load_root_key


def _create(path: str) -> tuple[bytes, bool]:
    return load_root_key(Path(path), init=True)


def test_processes_racing_to_create_the_root_key_all_get_the_one_created(tmp_path: Path) -> None:
    path = tmp_path / "project" / "root.key"
    with multiprocessing.get_context("fork").Pool(4) as pool:
        results = pool.map(_create, [str(path)] * 16)
    assert [created for _, created in results].count(True) == 1
    assert {material for material, _ in results} == {path.read_bytes()}
    assert len(path.read_bytes()) == ROOT_KEY_SIZE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(entry.name for entry in path.parent.iterdir()) == ["root.key"]  # no temporary file left


def test_a_temporary_file_left_by_a_killed_creator_is_not_the_root_key(tmp_path: Path) -> None:
    path = tmp_path / "root.key"
    (tmp_path / ".root.key.abandoned").write_bytes(b"\x00" * 7)  # what a creator killed mid-write leaves
    material, created = load_root_key(path, init=True)
    assert created and len(material) == ROOT_KEY_SIZE and path.read_bytes() == material
