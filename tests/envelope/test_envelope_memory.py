"""Constant memory: a 64 MiB file through ``kubekms encrypt``/``decrypt`` costs no more peak RSS than
a 1 MiB one, give or take a small margin (the 1 GiB figure is in bench/envelope_bench.py)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from envelope_fixtures import call, write_yaml

from kubekms.providers import BackendConfig

MiB = 1 << 20
# The CLI in-process, then its own peak RSS (KiB on Linux) on stderr's last line.
MEASURED_CLI = """
import resource, sys
from kubekms.cli.main import cli
try:
    cli(sys.argv[1:], standalone_mode=False)
finally:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def peak_rss(*args: str) -> int:
    done = subprocess.run([sys.executable, "-c", MEASURED_CLI, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return int(done.stderr.strip().splitlines()[-1]) * 1024


def write_random(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    block = hashlib.sha256(path.name.encode()).digest() * (MiB // 32)  # fast, incompressible enough per MiB
    with path.open("wb") as handle:
        for index in range(size // MiB):
            chunk = index.to_bytes(8, "big") + block[8:]
            handle.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


def test_peak_rss_does_not_grow_with_the_file(tmp_path: Path) -> None:
    config = BackendConfig(provider="local", state_dir=tmp_path / "keystore", init=True)
    call(config, "create_key", "memory")
    options = ["--backend-config", str(write_yaml(tmp_path / "local.yaml", config))]
    small, large = tmp_path / "small", tmp_path / "large"
    write_random(small, 1 * MiB)
    expected = write_random(large, 64 * MiB)

    baseline = peak_rss("encrypt", *options, "--key", "memory", str(small), str(tmp_path / "small.enc"))
    encrypting = peak_rss("encrypt", *options, "--key", "memory", str(large), str(tmp_path / "large.enc"))
    decrypting = peak_rss("decrypt", *options, str(tmp_path / "large.enc"), str(tmp_path / "large.out"))

    print(f"peak RSS, MiB: 1 MiB file {baseline / MiB:.1f}; 64 MiB {encrypting / MiB:.1f} / {decrypting / MiB:.1f}")
    assert sha256_of(tmp_path / "large.out") == expected
    # a whole-file implementation would hold at least 64 MiB more
    assert encrypting - baseline < 16 * MiB, (baseline, encrypting)
    assert decrypting - baseline < 16 * MiB, (baseline, decrypting)
