"""Keep frame-sized buffers on glibc's heap, for a process that streams large messages.

The SDK allocates and frees several frame-sized buffers per frame (source read, its reader's
copy, the frame's fields, the cipher's output, read()'s result). glibc serves blocks from
``M_MMAP_THRESHOLD`` up (128 KiB at start, moved up and down by what is freed) with fresh
mmaps and gives the heap's top back to the kernel past ``M_TRIM_THRESHOLD``: either way every
frame touches fresh pages, and the page faults cost more CPU than the cipher (measured in
bench/envelope_bench.py: 1 GiB encrypted in 1 MiB frames at ~1.7 GB/s instead of ~5.8 GB/s of
CPU; in 256 KiB frames too, at times, depending on what the heap held before). Fixed
thresholds above the largest frame end that: freed frame buffers are reused, and memory stays
bounded by a few frames' worth.

Process-wide, so only for a process whose main job this is (the ``kubekms encrypt``/``decrypt``
commands); a library must not change its host's allocator.
"""

from __future__ import annotations

import ctypes
import platform

from kubekms.envelope.messages import MAX_FRAME_BYTES

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
THRESHOLD_BYTES = 2 * MAX_FRAME_BYTES  # a frame plus its header and tag, with room
# The frame size to encrypt with once the thresholds are fixed: from 256 KiB to 1 MiB, ~25% more
# decryption and ~20% more encryption per CPU second (bench/envelope_bench.py --frames-kib).
LARGE_FRAME_BYTES = 1024 * 1024


def keep_frame_buffers_on_heap() -> bool:
    """Fix glibc's mmap and trim thresholds above the largest frame; False where not glibc."""
    if platform.libc_ver()[0] != "glibc":
        return False
    mallopt = ctypes.CDLL(None).mallopt
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD_BYTES)) and bool(mallopt(M_TRIM_THRESHOLD, THRESHOLD_BYTES))
