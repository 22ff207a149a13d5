"""``kubekms encrypt`` / ``kubekms decrypt`` as a user runs them, against the real server."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from aws_encryption_sdk.internal.formatting.deserialize import deserialize_header
from envelope_fixtures import KUBEKMS, call, new_key, run, write_yaml

from kubekms.envelope.allocator import LARGE_FRAME_BYTES
from kubekms.providers import BackendConfig


@pytest.fixture
def files(tmp_path: Path, configs: dict[str, BackendConfig]) -> dict[str, Path]:
    plaintext = tmp_path / "plain.bin"
    plaintext.write_bytes(os.urandom(700_000))
    return {
        "plain": plaintext,
        "kubekms": write_yaml(tmp_path / "kubekms.yaml", configs["kubekms"]),
        "aws": write_yaml(tmp_path / "aws.yaml", configs["aws"]),
    }


def test_two_backends_either_decrypts_and_errors_are_one_line(
    tmp_path: Path, configs: dict[str, BackendConfig], files: dict[str, Path]
) -> None:
    kubekms_alias, _ = new_key(configs["kubekms"])
    aws_alias, _ = new_key(configs["aws"])
    message = tmp_path / "plain.bin.enc"
    done = run(
        "encrypt",
        *("--backend-config", str(files["kubekms"]), "--backend", f"dr={files['aws']}"),
        *("--key", kubekms_alias, "--key", f"dr:alias/{aws_alias}", "--context", "app=billing"),
        str(files["plain"]),
        str(message),
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""  # no progress bar: stderr is not a terminal
    with message.open("rb") as handle:  # the CLI fixed its allocator (glibc here), so it writes large frames
        assert deserialize_header(handle)[0].frame_length == LARGE_FRAME_BYTES

    for backend in (["--backend-config", str(files["kubekms"])], ["--backend", f"x={files['aws']}"]):
        out = tmp_path / "out.bin"
        done = run("decrypt", *backend, "--context", "app=billing", str(message), str(out))
        assert done.returncode == 0, done.stderr
        assert out.read_bytes() == files["plain"].read_bytes()
        out.unlink()

    # wrong context: one line, exit 1, nothing written, no temporary file left
    done = run("decrypt", "--backend-config", str(files["kubekms"]), "--context", "app=payroll", str(message), "o")
    assert done.returncode == 1
    assert (
        done.stderr.decode().count("\n") == 1
        and "encryption context does not match: app='payroll'" in done.stderr.decode()
    )
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "aws.yaml",
        "kubekms.yaml",
        "plain.bin",
        "plain.bin.enc",
    ]


def test_stdin_stdout_and_a_truncated_stream_leaves_no_file(
    tmp_path: Path, configs: dict[str, BackendConfig], files: dict[str, Path]
) -> None:
    alias, _ = new_key(configs["kubekms"])
    config = ["--backend-config", str(files["kubekms"])]
    plaintext = files["plain"].read_bytes()
    encrypted = run("encrypt", *config, "--key", alias, "-", "-", stdin=plaintext)
    assert encrypted.returncode == 0, encrypted.stderr
    decrypted = run("decrypt", *config, "-", "-", stdin=encrypted.stdout)
    assert decrypted.returncode == 0 and decrypted.stdout == plaintext

    target = tmp_path / "restored.bin"
    target.write_bytes(b"previous content")
    truncated = run("decrypt", *config, "-", str(target), stdin=encrypted.stdout[: len(encrypted.stdout) - 100])
    assert truncated.returncode == 1
    assert truncated.stderr.decode().startswith("error: not a valid message")
    assert target.read_bytes() == b"previous content"  # untouched, and no partial plaintext beside it
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".restored.bin.")]

    tampered = bytearray(encrypted.stdout)
    tampered[len(tampered) // 2] ^= 1
    done = run("decrypt", *config, "-", str(target), stdin=bytes(tampered))
    assert done.returncode == 1 and b"authentication failed" in done.stderr
    assert target.read_bytes() == b"previous content"


def test_disabled_key_and_unknown_backend(configs: dict[str, BackendConfig], files: dict[str, Path]) -> None:
    alias, key_id = new_key(configs["kubekms"])
    call(configs["kubekms"], "disable_key", key_id)
    done = run("encrypt", "--backend-config", str(files["kubekms"]), "--key", alias, str(files["plain"]), "o.enc")
    assert done.returncode == 1 and b"KMS.0209" in done.stderr and done.stderr.count(b"\n") == 1
    done = run("encrypt", "--backend", f"a={files['aws']}", "--key", "b:x", str(files["plain"]), "o.enc")
    assert done.returncode == 1 and done.stderr.startswith(b"error: ") and b"no backend given" in done.stderr


def test_progress_bar_only_on_a_terminal(
    tmp_path: Path, configs: dict[str, BackendConfig], files: dict[str, Path]
) -> None:
    alias, _ = new_key(configs["kubekms"])
    controller, terminal = os.openpty()
    args = ["encrypt", "--backend-config", str(files["kubekms"]), "--key", alias, str(files["plain"]), "out.enc"]
    process = subprocess.Popen([KUBEKMS, *args], cwd=tmp_path, stderr=terminal, stdout=subprocess.DEVNULL)
    os.close(terminal)
    shown = b""
    while True:  # until the child closes its end of the terminal
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # EIO: no writer left
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    assert process.wait(timeout=60) == 0
    assert b"encrypting" in shown and b"100%" in shown
