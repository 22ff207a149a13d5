"""The client subcommands (key, datakey, random, quota) against a real ``kubekms server`` process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from kubekms.cli.main import cli
from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server

KUBEKMS = shutil.which("kubekms", path=str(Path(sys.executable).parent))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    principals = [Principal("reader", actions=("describe-key",))]
    with kms_server(tmp_path_factory.mktemp("cli-kms"), principals=principals) as running:
        yield running


@pytest.fixture
def env(server: KMSServer) -> dict[str, str]:
    """A fresh project per test, so listings see only the test's keys."""
    return {
        "KUBEKMS_ENDPOINT": server.endpoint,
        "KUBEKMS_PROJECT_ID": f"cli-{uuid.uuid4().hex[:10]}",
        "KUBEKMS_CREDENTIALS_FILE": str(server.credentials_file("admin")),
    }


def kubekms(env: dict[str, str], *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)


def as_json(result: Result) -> dict:  # type: ignore[type-arg]
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_key_lifecycle(env: dict[str, str]) -> None:
    created = as_json(
        kubekms(env, "key", "create", "cli-key", "--description", "demo", "--tag", "team=a", "-o", "json")
    )
    assert created["alias"] == "cli-key"
    assert created["state"] == "enabled"
    assert created["tags"] == {"team": "a"}
    key_id = created["key_id"]
    assert as_json(kubekms(env, "key", "describe", "cli-key", "-o", "json"))["key_id"] == key_id
    assert as_json(kubekms(env, "key", "disable", key_id, "-o", "json"))["state"] == "disabled"
    assert as_json(kubekms(env, "key", "enable", key_id, "-o", "json"))["state"] == "enabled"
    pending = as_json(kubekms(env, "key", "schedule-deletion", key_id, "--days", "7", "-o", "json"))
    assert pending["state"] == "pending-deletion"
    assert pending["deletion_date"]
    assert as_json(kubekms(env, "key", "cancel-deletion", key_id, "-o", "json"))["state"] == "disabled"
    kubekms(env, "key", "enable", key_id)
    assert as_json(kubekms(env, "key", "rotate", key_id, "-o", "json"))["current_version"] == 2
    status = as_json(kubekms(env, "key", "rotation", key_id, "--enable", "--interval-days", "90", "-o", "json"))
    assert (status["enabled"], status["interval_days"], status["number_of_rotations"]) == (True, 90, 1)
    assert as_json(kubekms(env, "key", "rotation", key_id, "--disable", "-o", "json"))["enabled"] is False


def test_human_output_is_a_table(env: dict[str, str]) -> None:
    kubekms(env, "key", "create", "table-a")
    kubekms(env, "key", "create", "table-b")
    result = kubekms(env, "key", "list")
    assert result.exit_code == 0
    header, *rows = result.stdout.splitlines()
    assert header.split()[:3] == ["KEY", "ID", "ALIAS"]
    assert [row.split()[1] for row in rows] == ["table-a", "table-b"]
    described = kubekms(env, "key", "describe", "table-a").stdout
    assert "alias:" in described and "table-a" in described and "enabled" in described


def test_list_pages_and_state_filter(env: dict[str, str]) -> None:
    ids = [as_json(kubekms(env, "key", "create", f"page-{i}", "-o", "json"))["key_id"] for i in range(3)]
    first = as_json(kubekms(env, "key", "list", "--limit", "2", "-o", "json"))
    assert [k["key_id"] for k in first["keys"]] == ids[:2]
    assert first["total"] == 3
    rest = as_json(kubekms(env, "key", "list", "--limit", "2", "--marker", first["next_marker"], "-o", "json"))
    assert [k["key_id"] for k in rest["keys"]] == ids[2:]
    assert rest["next_marker"] is None
    every = as_json(kubekms(env, "key", "list", "--limit", "1", "--all", "-o", "json"))
    assert [k["key_id"] for k in every["keys"]] == ids
    kubekms(env, "key", "disable", ids[1])
    disabled = as_json(kubekms(env, "key", "list", "--state", "disabled", "-o", "json"))
    assert [k["key_id"] for k in disabled["keys"]] == [ids[1]]


def test_list_never_claims_a_key_has_no_tags_or_aliases(env: dict[str, str]) -> None:
    """List calls return neither: the listing leaves the fields out rather than show ``[]`` and ``{}``."""
    as_json(kubekms(env, "key", "create", "tagged", "--tag", "team=pay", "-o", "json"))
    (listed,) = as_json(kubekms(env, "key", "list", "-o", "json"))["keys"]
    assert listed.get("tags", {"team": "pay"}) == {"team": "pay"}
    assert listed.get("aliases", ["tagged"]) == ["tagged"]
    assert listed["alias"] == "tagged"
    described = as_json(kubekms(env, "key", "describe", "tagged", "-o", "json"))
    assert (described["tags"], described["aliases"]) == ({"team": "pay"}, ["tagged"])


def test_data_key_ciphertext_file_round_trip_as_the_readme_shows(env: dict[str, str], tmp_path: Path) -> None:
    kubekms(env, "key", "create", "payments")
    dk = tmp_path / "dk.hex"
    made = kubekms(env, "datakey", "create", "payments", "--aad", "ns=prod", "--ciphertext-out", str(dk))
    assert made.exit_code == 0, made.output
    plaintext = made.stdout.split("plaintext:")[1].strip()
    assert dk.read_text().strip() in made.stdout and plaintext not in dk.read_text()
    opened = kubekms(env, "datakey", "decrypt", "payments", "--ciphertext-file", str(dk), "--aad", "ns=prod")
    assert (opened.exit_code, opened.stdout.strip()) == (0, plaintext)


def test_data_keys(env: dict[str, str], tmp_path: Path) -> None:
    kubekms(env, "key", "create", "dk")
    made = as_json(kubekms(env, "datakey", "create", "dk", "--length", "16", "--aad", "ns=a", "-o", "json"))
    assert len(bytes.fromhex(made["plaintext"])) == 16
    decrypted = kubekms(env, "datakey", "decrypt", "dk", "--ciphertext", made["ciphertext"], "--aad", "ns=a")
    assert decrypted.exit_code == 0
    assert decrypted.stdout.strip() == made["plaintext"]
    wrong = kubekms(env, "datakey", "decrypt", "dk", "--ciphertext", made["ciphertext"], "--aad", "ns=b")
    assert wrong.exit_code == 1
    assert wrong.stderr.startswith("error: KMS.22")
    assert len(wrong.stderr.strip().splitlines()) == 1
    secret = "11" * 32
    (tmp_path / "dek.hex").write_text(secret + "\n")
    wrapped = as_json(
        kubekms(env, "datakey", "encrypt", "dk", "--plaintext-file", str(tmp_path / "dek.hex"), "-o", "json")
    )
    assert "plaintext" not in wrapped
    back = kubekms(env, "datakey", "decrypt", "dk", "--ciphertext-file", "-", input=wrapped["ciphertext"])
    assert back.stdout.strip() == secret
    bare = as_json(kubekms(env, "datakey", "create", "dk", "--no-plaintext", "-o", "json"))
    assert "plaintext" not in bare


def test_random_and_quota(env: dict[str, str]) -> None:
    random = as_json(kubekms(env, "random", "--length", "48", "-o", "json"))
    assert len(bytes.fromhex(random["random"])) == 48 == random["length"]
    assert len(kubekms(env, "random").stdout.strip()) == 64
    kubekms(env, "key", "create", "quota-key")
    quota = as_json(kubekms(env, "quota", "-o", "json"))
    assert quota["instances"] == 1
    assert quota["quotas"] == [{"resource": "CMK", "used": 1, "limit": 1000}]


def test_errors_are_one_line_and_exit_1(env: dict[str, str], server: KMSServer) -> None:
    missing = kubekms(env, "key", "describe", "no-such-key")
    assert missing.exit_code == 1
    assert missing.stderr.startswith("error: KMS.0207: ")
    assert len(missing.stderr.strip().splitlines()) == 1
    assert missing.stdout == ""
    kubekms(env, "key", "create", "twice")
    duplicate = kubekms(env, "key", "create", "twice")
    assert (duplicate.exit_code, duplicate.stderr.split(":")[1].strip()) == (1, "KMS.1104")
    denied = kubekms({**env, "KUBEKMS_CREDENTIALS_FILE": str(server.credentials_file("reader"))}, "random")
    assert denied.exit_code == 1
    assert denied.stderr.startswith("error: KMS.03")
    nowhere = kubekms({"KUBEKMS_ENDPOINT": ""}, "quota")
    assert nowhere.exit_code == 1
    assert "--backend-config" in nowhere.stderr


def test_backend_config_file_with_the_local_provider(tmp_path: Path) -> None:
    config = tmp_path / "backend.yaml"
    config.write_text(yaml.safe_dump({"provider": "local", "state_dir": str(tmp_path / "ks"), "init": True}))
    created = as_json(kubekms({}, "key", "create", "local-key", "--backend-config", str(config), "-o", "json"))
    listed = as_json(kubekms({}, "key", "list", "--backend-config", str(config), "-o", "json"))
    assert [k["key_id"] for k in listed["keys"]] == [created["key_id"]]
    config.write_text(yaml.safe_dump({"provider": "local", "password": "x"}))
    bad = kubekms({}, "quota", "--backend-config", str(config))
    assert bad.exit_code == 1
    assert "unknown field(s) password" in bad.stderr


def test_console_script_against_the_server(env: dict[str, str]) -> None:
    assert KUBEKMS
    result = subprocess.run(
        [KUBEKMS, "key", "create", "script-key", "-o", "json"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["alias"] == "script-key"
