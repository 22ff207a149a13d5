"""Hostile and interrupted ``kubekms decrypt``: bytes after a message (two messages concatenated) are refused,
not silently dropped; a decrypt stopped by SIGTERM leaves neither OUT nor its partial plaintext behind."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kubekms.cli.backend_access import load_backend_config
from kubekms.envelope import Envelope, KeyRef, Keyring
from kubekms.envelope.errors import InvalidMessage

KUBEKMS = str(Path(__file__).parents[2] / ".venv" / "bin" / "kubekms")
ALIAS = "red-envelope"


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A local keystore with one key, as a --backend-config file."""
    state = tmp_path_factory.mktemp("red-envelope")
    path = state / "backend.yaml"
    path.write_text(yaml.safe_dump({"provider": "local", "state_dir": str(state / "keystore"), "init": True}))
    created = subprocess.run([KUBEKMS, "key", "create", ALIAS, "--backend-config", str(path)], capture_output=True,
                             timeout=60, check=False)  # fmt: skip
    assert created.returncode == 0, created.stderr
    yield path


def _envelope_message(config: Path, plaintext: bytes) -> bytes:
    backend = load_backend_config(config)
    with Keyring({"default": backend}, [KeyRef("default", ALIAS)]) as keyring:
        return Envelope(keyring, frame_bytes=4096).encrypt(plaintext, {"app": "red"})


def _decrypt(config: Path, source: Path, out: Path) -> subprocess.CompletedProcess[bytes]:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("KUBEKMS_")}
    return subprocess.run([KUBEKMS, "decrypt", "--backend-config", str(config), str(source), str(out)],
                          capture_output=True, timeout=60, env=environment, check=False)  # fmt: skip


def test_bytes_after_the_message_are_refused(config: Path, tmp_path: Path) -> None:
    first, second = _envelope_message(config, b"first " * 1000), _envelope_message(config, b"second " * 1000)
    backend = load_backend_config(config)
    with Keyring({"default": backend}) as keyring:
        assert Envelope(keyring).decrypt(first) == b"first " * 1000
        for trailing in (first + second, first + b"\x00"):
            with pytest.raises(InvalidMessage, match="after the end"):
                Envelope(keyring).decrypt(trailing)
        stream, sink = io.BytesIO(first + second), io.BytesIO()  # a stream of messages, read one at a time
        for _ in range(2):
            Envelope(keyring).decrypt_stream(stream, sink, whole_source=False)
        assert sink.getvalue() == b"first " * 1000 + b"second " * 1000
    joined = tmp_path / "joined.enc"
    joined.write_bytes(first + second)
    done = _decrypt(config, joined, tmp_path / "out")
    assert done.returncode == 1 and b"after the end" in done.stderr, done.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["joined.enc"]


def test_sigterm_during_decrypt_leaves_no_partial_plaintext(config: Path, tmp_path: Path) -> None:
    message = _envelope_message(config, os.urandom(400_000))
    source = tmp_path / "in.fifo"
    os.mkfifo(source)
    out = tmp_path / "out"
    environment = {name: value for name, value in os.environ.items() if not name.startswith("KUBEKMS_")}
    process = subprocess.Popen([KUBEKMS, "decrypt", "--backend-config", str(config), str(source), str(out)],
                               stderr=subprocess.PIPE, env=environment)  # fmt: skip
    finished = threading.Event()

    def feed_half() -> None:  # the message's first half, then the pipe stays open: decrypt waits mid-message
        with contextlib.suppress(BrokenPipeError), open(source, "wb") as pipe:  # broken when decrypt is stopped
            pipe.write(message[: len(message) // 2])
            pipe.flush()
            finished.wait(60)

    feeder = threading.Thread(target=feed_half)
    feeder.start()
    try:
        deadline = time.monotonic() + 30
        while not any(path.name.endswith(".part") and path.stat().st_size for path in tmp_path.iterdir()):
            assert time.monotonic() < deadline, "decrypt never wrote plaintext"
            assert process.poll() is None, process.stderr.read() if process.stderr else b""
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        process.wait(30)
    finally:
        finished.set()
        feeder.join()
    assert process.returncode != 0
    assert sorted(path.name for path in tmp_path.iterdir()) == ["in.fifo"]
