"""Red team (H16) guards: files made outside the keystore (a Cloud KMS key file, the plugin's socket) are never
made through a symbolic link planted at their path; the link's target stays as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubekms.server.gcp_keygen import write_key
from kubekms_plugin.server import SocketInUse, prepare_socket


def planted_link(tmp_path: Path, name: str) -> tuple[Path, Path]:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    planted = tmp_path / "dir" / name
    planted.parent.mkdir(mode=0o700)
    planted.symlink_to(victim)
    return planted, victim


@pytest.mark.parametrize("dangling", [False, True])
def test_a_link_planted_at_the_gcp_key_file_is_not_written_through(tmp_path: Path, dangling: bool) -> None:
    planted, victim = planted_link(tmp_path, "key.json")
    if dangling:  # would the private key be created at the link's target?
        victim.unlink()
    with pytest.raises(FileExistsError):
        write_key("a@p.iam.gserviceaccount.com", "p", planted)
    if dangling:
        assert not victim.exists()
    else:
        assert victim.read_bytes() == b"precious\n"


def test_a_link_planted_at_the_plugin_socket_is_refused_not_replaced(tmp_path: Path) -> None:
    planted, victim = planted_link(tmp_path, "kms.sock")
    with pytest.raises(SocketInUse, match="not a socket"):
        prepare_socket(planted)
    assert planted.is_symlink() and victim.read_bytes() == b"precious\n"
