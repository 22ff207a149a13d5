"""``kubekms plugin`` refuses to start on a backend it cannot open with one log line, never a traceback."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from kubekms.devenv.processes import free_port, kubekms_argv


def test_a_local_keystore_that_does_not_exist_stops_the_plugin_with_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no-keystore"
    argv = kubekms_argv("plugin", "--provider", "local", "--state-dir", str(missing), "--key", "etcd",
                        "--socket", str(tmp_path / "plugin.sock"),
                        "--health-address", f"127.0.0.1:{free_port()}")  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    line = json.loads(done.stderr.strip().splitlines()[-1])
    assert line["message"] == "cannot start" and f"keystore directory {missing} does not exist" in line["error"]
    assert not (tmp_path / "plugin.sock").exists() and not missing.exists()
