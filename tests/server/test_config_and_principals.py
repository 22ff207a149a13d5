"""The server's config file and principals file: what they accept, what they refuse, and why."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kubekms.errors import AccessDenied, Reason
from kubekms.server.config import ServerConfig, ServerConfigError
from kubekms.server.principals import PrincipalsFileError, load_principals, parse_principals


def write_config(tmp_path: Path, **settings: object) -> Path:
    path = tmp_path / "server.yaml"
    path.write_text(yaml.safe_dump({"state_dir": "state", "principals_file": "p.yaml", **settings}))
    return path


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    config = ServerConfig.load(write_config(tmp_path))
    assert (config.host, config.port) == ("127.0.0.1", 8443)
    assert config.state_dir == tmp_path / "state" and config.principals_file == tmp_path / "p.yaml"
    assert (config.audit_log, config.cmk_limit, config.maintenance_interval) == ("-", 1000, 10.0)
    assert config.tls_cert is None


def test_ipv6_listen_and_audit_file(tmp_path: Path) -> None:
    config = ServerConfig.load(write_config(tmp_path, listen="[::1]:9443", audit_log="audit.log"))
    assert (config.host, config.port, config.audit_log) == ("::1", 9443, str(tmp_path / "audit.log"))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"listen": "8443"}, "HOST:PORT"),
        ({"listen": "host:99999"}, "HOST:PORT"),
        ({"tls_cert": "a.crt"}, "go together"),
        ({"cmk_limit": "many"}, "cmk_limit"),
        ({"maintenance_interval": 0}, "maintenance_interval"),
        ({"secret_key": "inline"}, "unknown settings secret_key"),
        ({"state_dir": None}, "state_dir is required"),
    ],
)
def test_bad_configs_are_refused_with_the_setting_named(tmp_path: Path, settings: dict, message: str) -> None:
    with pytest.raises(ServerConfigError, match=message):
        ServerConfig.load(write_config(tmp_path, **settings))


def test_principals_file_must_be_private(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump([{"name": "a", "access_key": "AK", "secret_key": "SK"}]))
    path.chmod(0o640)
    with pytest.raises(PrincipalsFileError, match="chmod 600"):
        load_principals(path)
    path.chmod(0o600)
    assert load_principals(path).secret_for("AK") == "SK"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"name": "a"}, "list of principals"),
        ([{"name": "a", "access_key": "AK"}], "secret_key"),
        ([{"name": "a", "access_key": "AK", "secret_key": "S", "actions": "describe-key"}], "actions must be a list"),
        ([{"name": "a", "access_key": "AK", "secret_key": "S"}, {"name": "a", "access_key": "B", "secret_key": "S"}],
         "used twice"),
        ([{"name": "a", "access_key": "AK", "secret_key": "S"}, {"name": "b", "access_key": "AK", "secret_key": "S"}],
         "used twice"),
    ],
)  # fmt: skip
def test_bad_principals_are_refused(data: object, message: str) -> None:
    with pytest.raises(PrincipalsFileError, match=message):
        parse_principals(data, source="p.yaml")


def test_a_principal_repr_never_shows_its_secret() -> None:
    directory = parse_principals([{"name": "a", "access_key": "AK", "secret_key": "TOPSECRET"}], source="p")
    principal = directory.get("AK")
    assert principal is not None and "TOPSECRET" not in repr(principal)


def test_permissions_by_operation_key_and_project() -> None:
    directory = parse_principals(
        [{"name": "p", "access_key": "AK", "secret_key": "S", "actions": ["create-datakey"], "keys": ["app"],
          "projects": ["proj1"]}],
        source="p",
    )  # fmt: skip
    principal = directory.get("AK")
    assert principal is not None
    principal.check_operation("create-datakey", "proj1")
    for operation, project, reason in (
        ("describe-key", "proj1", Reason.OPERATION_DENIED),
        ("create-datakey", "proj2", Reason.PROJECT_DENIED),
    ):
        with pytest.raises(AccessDenied) as caught:
            principal.check_operation(operation, project)
        assert caught.value.reason is reason
    assert principal.names_allowed_key(["some-id", "app"]) and not principal.names_allowed_key(["other"])
    assert not principal.all_keys
