"""``python -m kubekms.server.gcp_keygen`` with a key file it cannot write: one line and exit 1, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_an_unwritable_key_file_is_one_line(tmp_path: Path) -> None:
    for key_file, reason in ((tmp_path / "missing" / "key.json", "No such file or directory"), (tmp_path, "exists")):
        argv = [sys.executable, "-m", "kubekms.server.gcp_keygen", "a@p.iam.gserviceaccount.com", "p", str(key_file)]
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert reason in done.stderr and done.stderr.count("\n") == 1 and done.stdout == "", done.stderr
