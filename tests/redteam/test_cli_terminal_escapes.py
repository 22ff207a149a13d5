"""Text any principal may write (a key's description, tags) reaches an operator's terminal through `kubekms key
list/describe`: control characters must be shown escaped, never emitted raw (terminal escape injection: retitle,
clear the screen, hide lines with carriage returns); JSON output keeps the exact text."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

KUBEKMS = str(Path(__file__).parents[2] / ".venv" / "bin" / "kubekms")
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\rsafe\x9b31m"
RAW_CONTROLS = (b"\x1b", b"\x07", b"\r", "\x9b".encode())


def _run(*args: str) -> subprocess.CompletedProcess[bytes]:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("KUBEKMS_")}
    return subprocess.run([KUBEKMS, *args], capture_output=True, timeout=60, env=environment, check=False)


def test_control_characters_are_escaped_in_human_output(tmp_path: Path) -> None:
    config = tmp_path / "backend.yaml"
    config.write_text(yaml.safe_dump({"provider": "local", "state_dir": str(tmp_path / "keystore"), "init": True}))
    backend = ("--backend-config", str(config))
    # tags can no longer hold control characters (the keystore refuses them, 38773ca): the description still can
    made = _run("key", "create", "esc", "--description", HOSTILE, "--tag", "team=ops", *backend)
    assert made.returncode == 0, made.stderr
    for command in (("key", "list"), ("key", "describe", "esc")):
        shown = _run(*command, *backend)
        assert shown.returncode == 0, shown.stderr
        assert not [control for control in RAW_CONTROLS if control in shown.stdout], (command, shown.stdout)
        assert b"\\x1b]0;pwned" in shown.stdout, shown.stdout
    described = json.loads(_run("key", "describe", "esc", "-o", "json", *backend).stdout)
    assert described["description"] == HOSTILE and described["tags"] == {"team": "ops"}
    refused = _run("key", "create", "esc2", "--tag", f"team={HOSTILE}", *backend)
    assert refused.returncode == 1 and b"control characters" in refused.stderr, refused.stderr
