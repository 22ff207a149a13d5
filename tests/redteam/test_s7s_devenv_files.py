"""Red team (H16): ``kubekms dev`` writes secrets (principals with their keys, client credentials, the cluster's
private keys) into its state directory; a link planted there must not carry them, nor a chmod, to its target."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.pki import generate_pki

VICTIM = b"precious\n"


def planted(directory: Path, name: str, victim: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    victim.write_bytes(VICTIM)
    victim.chmod(0o644)
    (directory / name).symlink_to(victim)


def assert_untouched(victim: Path) -> None:
    assert victim.read_bytes() == VICTIM and stat.S_IMODE(victim.stat().st_mode) == 0o644


def test_a_link_planted_at_the_dev_principals_file_is_refused(tmp_path: Path) -> None:
    state, victim = tmp_path / "dev", tmp_path / "victim"
    planted(state, "principals.yaml", victim)
    with pytest.raises(OSError, match=r"principals\.yaml is a symbolic link"):
        KMSServer(state)
    assert_untouched(victim)


@pytest.mark.parametrize("name", ["admin.key", "sa.key"])
def test_a_link_planted_at_a_dev_private_key_is_refused(tmp_path: Path, name: str) -> None:
    pki, victim = tmp_path / "pki", tmp_path / "victim"
    planted(pki, name, victim)
    with pytest.raises(OSError, match=f"{name} is a symbolic link"):
        generate_pki(pki)
    assert_untouched(victim)
