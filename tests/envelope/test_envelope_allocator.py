"""The CLI's allocator setting: frame-sized buffers freed and allocated again stop costing page faults.

Each measurement runs in a process of its own (the setting is process-wide), after the same
imports: rounds of four 1 MiB buffers allocated, written, freed, counting minor page faults
(fresh pages touched).
"""

from __future__ import annotations

import subprocess
import sys

ROUNDS = """
import resource, sys
from kubekms.envelope.allocator import keep_frame_buffers_on_heap
if sys.argv[1] == "tuned":
    assert keep_frame_buffers_on_heap()
def one_round():
    buffers = [bytearray(1 << 20) for _ in range(4)]
    for buffer in buffers:
        buffer[::4096] = b"x" * 256
one_round()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(100):
    one_round()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def page_faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", ROUNDS, mode], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_frame_buffers_are_reused_instead_of_faulted_in_again() -> None:
    default, tuned = page_faults("default"), page_faults("tuned")
    # 100 rounds x 4 MiB of fresh pages is ~100,000 faults when glibc hands the memory back each round
    assert default > 10_000, default
    assert tuned < default / 20, (default, tuned)
