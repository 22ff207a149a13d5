"""``kubekms decrypt`` of a message made under a key other than the one the reader expects.

Decryption tried every key a message names that the reader's credentials may use (the AWS Encryption
SDK's discovery mode). Whoever can hand the reader a file, and can wrap a data key under any key those
credentials may also use (another key of the same project, or on AWS a key in the attacker's own account
whose policy lets the reader decrypt), made a message that decrypted with exit 0: content the reader
takes as sealed under its own key. The SDK's answer is strict mode (only the named keys); decrypt had no
way to name them. Expected: ``decrypt --key K`` refuses a message whose data keys are not wrapped under
K, by id even when K is given as an alias, on the v1.0 and the AWS wire, and nothing is written.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kubekms.devenv.kmsserver import KMSServer, kms_server
from kubekms.envelope import Envelope, KeyRef, Keyring

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "envelope"))
from envelope_fixtures import aws_config, call, run, write_yaml


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("s7k-envelope")) as running:
        yield running


@pytest.mark.parametrize("wire", ["kubekms", "aws"])
def test_decrypt_with_key_accepts_only_messages_under_that_key(tmp_path: Path, server: KMSServer, wire: str) -> None:
    config = server.backend_config() if wire == "kubekms" else aws_config(server)
    prefix = "alias/" if wire == "aws" else ""
    for alias in ("mine", "other"):
        call(server.backend_config(), "create_key", f"s7k-{wire}-{alias}")
    plaintext = os.urandom(300)
    files = {}
    with Keyring({"b": config}, [KeyRef("b", f"{prefix}s7k-{wire}-mine")]) as mine:
        files["genuine"] = Envelope(mine).encrypt(plaintext, {"app": "billing"})
    with Keyring({"b": config}, [KeyRef("b", f"{prefix}s7k-{wire}-other")]) as other:
        files["forged"] = Envelope(other).encrypt(b"pay mallory", {"app": "billing"})
    for name, message in files.items():
        (tmp_path / f"{name}.enc").write_bytes(message)
    backend = ["--backend-config", str(write_yaml(tmp_path / "backend.yaml", config))]
    key = ["--key", f"{prefix}s7k-{wire}-mine"]

    forged = run("decrypt", *backend, *key, str(tmp_path / "forged.enc"), str(tmp_path / "forged.out"))
    assert forged.returncode == 1, forged.stderr
    assert b"not one of the keys this decryption accepts" in forged.stderr, forged.stderr
    assert not (tmp_path / "forged.out").exists()

    genuine = run("decrypt", *backend, *key, str(tmp_path / "genuine.enc"), str(tmp_path / "genuine.out"))
    assert genuine.returncode == 0, genuine.stderr
    assert (tmp_path / "genuine.out").read_bytes() == plaintext


def test_decrypt_with_an_unknown_key_is_one_line_and_writes_nothing(tmp_path: Path, server: KMSServer) -> None:
    backend = ["--backend-config", str(write_yaml(tmp_path / "backend.yaml", server.backend_config()))]
    (tmp_path / "in.enc").write_bytes(b"not read")
    done = run("decrypt", *backend, "--key", "s7k-no-such-key", str(tmp_path / "in.enc"), str(tmp_path / "out"))
    assert done.returncode == 1 and done.stderr.count(b"\n") == 1, done.stderr
    assert b"s7k-no-such-key" in done.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["backend.yaml", "in.enc"]
