"""Red team (H14) of ``kubekms server``'s start-up: secrets in files any local user could read."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubekms.server.config import ServerConfig, ServerConfigError

SECRET = "s7z-password-9f2d"


def config_naming(tmp_path: Path, url_mode: int) -> ServerConfig:
    url_file = tmp_path / "database-url"
    url_file.write_text(f"postgresql://kubekms:{SECRET}@db/kubekms\n")
    url_file.chmod(url_mode)
    config_file = tmp_path / "server.yaml"
    config_file.write_text(f"state_dir: state\nprincipals_file: principals.yaml\ndatabase_url_file: {url_file}\n")
    return ServerConfig.load(config_file)


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o666])
def test_a_database_url_file_every_local_user_may_read_is_refused(tmp_path: Path, mode: int) -> None:
    with pytest.raises(ServerConfigError, match=f"mode {mode:04o}") as refused:
        config_naming(tmp_path, mode).database_url()
    assert SECRET not in str(refused.value)


@pytest.mark.parametrize("mode", [0o600, 0o400, 0o440])  # 0440: the chart's Secret volume (defaultMode)
def test_a_database_url_file_kept_from_other_users_is_read(tmp_path: Path, mode: int) -> None:
    url = config_naming(tmp_path, mode).database_url()
    assert url is not None and SECRET in url
