"""A kubekms server whose keystore rows live in PostgreSQL, driven over HTTP by the REST provider."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import yaml

from kubekms.backend import KeyState
from kubekms.devenv.kmsserver import KMSServer
from kubekms.errors import Disabled
from kubekms.keystore import Keystore, KeystoreSetupError
from kubekms.server.config import ServerConfig, ServerConfigError

_PASSWORD = "never-logged-7c1e"  # trust auth ignores it; it marks the URL's secret part


def test_a_server_on_postgresql_serves_a_lifecycle_across_a_restart(tmp_path: Path, database_url: str) -> None:
    url = database_url.replace("kubekms@", f"kubekms:{_PASSWORD}@")
    url_file = tmp_path / "database-url"
    url_file.write_text(url + "\n")
    url_file.chmod(0o600)
    server = KMSServer(tmp_path / "kms", project_id="pgproj")
    config_path = server.state_dir / "server.yaml"
    config = yaml.safe_load(config_path.read_text())
    config_path.write_text(yaml.safe_dump({**config, "database_url_file": str(url_file)}))
    server.start()
    try:
        key = server.call("create_key", "on-postgres")
        data_key = server.call("create_data_key", key.key_id)
        server.call("disable_key", key.key_id)
        with pytest.raises(Disabled):
            server.call("create_data_key", key.key_id)
        server.call("enable_key", key.key_id)
        assert server.call("rotate_key", key.key_id).current_version == 2
        server.stop()
        server.start()  # the rows are in the database, the root key in state_dir
        assert server.call("decrypt_data_key", key.key_id, data_key.ciphertext) == data_key.plaintext
        pending = server.call("schedule_key_deletion", key.key_id, 7)
        assert pending.state is KeyState.PENDING_DELETION
    finally:
        server.stop()
    project = server.state_dir / "keystore" / "pgproj"
    assert (project / "root.key").exists() and not (project / "keystore.db").exists()
    with psycopg.connect(database_url) as connection:
        assert connection.execute("SELECT state, current_version FROM pgproj.keys").fetchall() == [
            (KeyState.PENDING_DELETION.value, 2)
        ]
    assert _PASSWORD not in server.log.read_text()
    assert _PASSWORD not in config_path.read_text()


def test_a_bad_database_url_file_is_refused_without_quoting_it(tmp_path: Path) -> None:
    (tmp_path / "principals.yaml").write_text("{}\n")
    (tmp_path / "url").write_text(f"host=db password={_PASSWORD}\n")  # a libpq keyword string, not a URL
    config_file = tmp_path / "server.yaml"
    config_file.write_text("state_dir: state\nprincipals_file: principals.yaml\ndatabase_url_file: url\n")
    config = ServerConfig.load(config_file)
    with pytest.raises(ServerConfigError, match="must hold a postgresql:// URL") as refused:
        config.database_url()
    assert _PASSWORD not in str(refused.value)
    (tmp_path / "url").unlink()
    with pytest.raises(ServerConfigError, match="No such file"):
        config.database_url()


def test_a_project_that_cannot_name_a_schema_is_refused(tmp_path: Path, database_url: str) -> None:
    with pytest.raises(KeystoreSetupError, match="pg_"):
        Keystore(tmp_path / "pg_catalog", init=True, database_url=database_url)
