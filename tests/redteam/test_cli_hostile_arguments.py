"""The CLI given bytes that are not UTF-8 (a shell passes any bytes; Python keeps them as lone surrogates):
one precise line and a non-zero exit, never a traceback, and nothing half-made."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

KUBEKMS = os.fsencode(Path(__file__).parents[2] / ".venv" / "bin" / "kubekms")
BAD = b"\xff"


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    state = tmp_path_factory.mktemp("red-cli")
    path = state / "backend.yaml"
    path.write_text(yaml.safe_dump({"provider": "local", "state_dir": str(state / "keystore"), "init": True}))
    assert _run(b"key", b"create", b"k1", b"--backend-config", os.fsencode(path)).returncode == 0
    return path


def _run(*args: bytes, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("KUBEKMS_")}
    return subprocess.run([KUBEKMS, *args], input=stdin, capture_output=True, timeout=60, env=environment, check=False)


def test_arguments_that_are_not_utf8_get_one_line(config: Path, tmp_path: Path) -> None:
    backend = (b"--backend-config", os.fsencode(config))
    plain, binary = tmp_path / "in", tmp_path / "binary"
    plain.write_bytes(b"data")
    binary.write_bytes(b"\xff\xfe\x00 not hex")
    commands = {
        "datakey --aad": (b"datakey", b"create", b"k1", b"--aad", BAD, *backend),
        "key --description": (b"key", b"create", b"k2", b"--description", BAD, *backend),
        "key --tag": (b"key", b"create", b"k3", b"--tag", b"a=" + BAD, *backend),
        "key alias": (b"key", b"describe", b"k1" + BAD, *backend),
        "encrypt --key": (b"encrypt", b"--key", b"k1" + BAD, *backend, os.fsencode(plain), os.fsencode(tmp_path / "o")),
        "encrypt --context": (b"encrypt", b"--key", b"k1", b"--context", b"a=" + BAD, *backend, os.fsencode(plain),
                              os.fsencode(tmp_path / "o")),
        "datakey --ciphertext-file binary": (b"datakey", b"decrypt", b"k1", b"--ciphertext-file", os.fsencode(binary),
                                             *backend),
    }  # fmt: skip
    for why, command in commands.items():
        done = _run(*command)
        assert done.returncode in (1, 2), (why, done.returncode, done.stderr)
        last = done.stderr.strip().splitlines()[-1]
        assert b"Traceback" not in done.stderr and last.lower().startswith(b"error: "), (why, done.stderr)
    listed = _run(b"key", b"list", b"-o", b"json", *backend)
    assert [key["alias"] for key in yaml.safe_load(listed.stdout)["keys"]] == ["k1"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["binary", "in"]
