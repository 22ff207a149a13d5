"""Constant memory: a 64 MiB file through ``kubekms encrypt``/``decrypt`` costs no more peak RSS than
a 1 MiB one, give or take a small margin (the 1 GiB figure is in bench/envelope_bench.py)."""

from __future__ import annotations

from pathlib import Path

from envelope_fixtures import MiB, streaming_peak_rss


def test_peak_rss_does_not_grow_with_the_file(tmp_path: Path) -> None:
    baseline, encrypting, decrypting = streaming_peak_rss(tmp_path, 64 * MiB)
    print(f"peak RSS, MiB: 1 MiB file {baseline / MiB:.1f}; 64 MiB {encrypting / MiB:.1f} / {decrypting / MiB:.1f}")
    # a whole-file implementation would hold at least 64 MiB more
    assert encrypting - baseline < 16 * MiB, (baseline, encrypting)
    assert decrypting - baseline < 16 * MiB, (baseline, decrypting)
