"""A KEY=VALUE option given twice with the same key (``--context``, ``--tag``).

The later copy silently replaced the earlier one. For ``kubekms decrypt --context`` that turns a
required pair into a suggestion: a script running ``decrypt --context tenant=$TENANT $EXTRA`` with an
appended ``--context tenant=other`` from its caller decrypted the other tenant's message (exit 0).
Expected: a usage error naming the option and the key, nothing written.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from kubekms.cli.main import cli


@pytest.fixture
def backend(tmp_path: Path) -> Path:
    config = tmp_path / "local.yaml"
    config.write_text(f"provider: local\nstate_dir: {tmp_path / 'state'}\ninit: true\n")
    done = CliRunner().invoke(cli, ["key", "create", "k", "--backend-config", str(config)])
    assert done.exit_code == 0, done.output
    return config


def test_decrypt_refuses_a_context_key_given_twice(tmp_path: Path, backend: Path) -> None:
    plain, message, out = tmp_path / "plain", tmp_path / "plain.enc", tmp_path / "out"
    plain.write_bytes(os.urandom(100))
    config = ["--backend-config", str(backend)]
    encrypted = CliRunner().invoke(cli, ["encrypt", *config, "--key", "k", "--context", "tenant=other",
                                         str(plain), str(message)])  # fmt: skip
    assert encrypted.exit_code == 0, encrypted.output
    done = CliRunner().invoke(cli, ["decrypt", *config, "--context", "tenant=mine", "--context", "tenant=other",
                                    str(message), str(out)])  # fmt: skip
    assert done.exit_code == 2, done.output
    assert "--context" in done.output and "'tenant' given twice" in done.output
    assert not out.exists()


@pytest.mark.parametrize("command", [["encrypt", "--key", "k", "--context"], ["key", "create", "k2", "--tag"]])
def test_every_pairs_option_refuses_a_repeated_key(tmp_path: Path, backend: Path, command: list[str]) -> None:
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")
    option = command[-1]
    files = [str(plain), str(tmp_path / "out")] if command[0] == "encrypt" else []
    done = CliRunner().invoke(cli, [*command, "a=1", option, "a=2", "--backend-config", str(backend), *files])
    assert done.exit_code == 2, done.output
    assert option in done.output and "'a' given twice" in done.output
