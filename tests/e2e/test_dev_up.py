"""The README's main command: ``kubekms dev up --check`` runs the whole mission, twice on one state."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kubekms.devenv.processes import wait_for

pytestmark = pytest.mark.e2e

KUBEKMS = shutil.which("kubekms", path=str(Path(sys.executable).parent))


def dev_up(state_dir: Path) -> subprocess.CompletedProcess[str]:
    assert KUBEKMS
    return subprocess.run(
        [KUBEKMS, "dev", "up", "--check", "--state-dir", str(state_dir)],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_dev_up_shows_the_evidence_and_a_second_run_keeps_everything(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = dev_up(state)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "prefix k8s:enc:kms:v2:kubekms:: yes" in first.stdout
    assert "in etcd: no" in first.stdout
    assert "check passed" in first.stdout
    # installed, and proven applied by the apiserver (a dry-run KMSKey came back with the finalizer)
    assert "the policy that writes the operator's finalizer at creation" in first.stdout
    key_line = next(line for line in first.stdout.splitlines() if "key in the kubekms server" in line)
    assert_client_env_reaches_the_server(state, first.stdout)

    second = dev_up(state)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "existing cluster key" in second.stdout
    assert key_line in second.stdout  # the same key, still there
    assert "check passed" in second.stdout


def assert_client_env_reaches_the_server(state: Path, output: str) -> None:
    """``kubekms dev env`` prints the exports of the last run; the console's URL is the same server's."""
    assert KUBEKMS
    env = subprocess.run([KUBEKMS, "dev", "env", "--state-dir", str(state)], capture_output=True, text=True)
    assert env.returncode == 0, env.stderr
    exports = dict(line.removeprefix("export ").split("=", 1) for line in env.stdout.splitlines())
    assert exports["KUBEKMS_PROVIDER"] == "kubekms"
    assert f"web console: {exports['KUBEKMS_ENDPOINT']}/console/" in output
    credentials = Path(exports["KUBEKMS_CREDENTIALS_FILE"])
    assert credentials.is_file() and credentials.stat().st_mode & 0o077 == 0
    assert (state / "client.env").stat().st_mode & 0o777 == 0o600
    assert "secret_key" not in env.stdout  # a path to the credentials, never the secret itself


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` now (from /proc: each process's parent)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_dev_up_as_a_user_runs_it(tmp_path: Path) -> None:
    """Stays up: the printed CLI line works from a shell without .venv on its PATH; a key changed behind the
    operator's back is put back within seconds; a second run on the same state is refused in one line; SIGTERM
    stops everything cleanly (exit 0), as Ctrl-C does."""
    assert KUBEKMS
    state = tmp_path / "state"
    log = tmp_path / "dev-up.log"
    # as after scripts/dev-up on a fresh machine: the venv's bin is not on the PATH (even if this test's is)
    venv_bin = str(Path(KUBEKMS).parent)
    path = os.pathsep.join(part for part in os.environ.get("PATH", "").split(os.pathsep) if part != venv_bin)
    with log.open("wb") as out:
        stack = subprocess.Popen(
            [KUBEKMS, "dev", "up", "--state-dir", str(state)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PATH": path},
        )
    try:
        wait_for(lambda: "press Ctrl-C" in log.read_text() or stack.poll() is not None, 300, "the stack to be up")
        output = log.read_text()
        assert stack.poll() is None, output

        # the CLI line as printed, in a shell that has never heard of .venv
        line = next(line for line in output.splitlines() if "] CLI: " in line).split("] CLI: ", 1)[1]
        bare = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
        printed = subprocess.run(["bash", "-c", line], capture_output=True, text=True, env=bare, timeout=60)
        assert printed.returncode == 0, line + "\n" + printed.stderr
        assert "kubekms/cluster-secrets" in printed.stdout

        def cli(*args: str) -> str:
            shell = f"{line.split('; kubekms key list')[0]}; kubekms {' '.join(args)}"
            done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, env=bare, timeout=60)
            assert done.returncode == 0, done.stderr
            return done.stdout

        # drift: disabled by hand, enabled again by the operator well before its default 300 s
        assert "state:                  disabled" in cli("key", "disable", "kubekms/cluster-secrets")
        wait_for(lambda: "state:                  enabled" in cli("key", "describe", "kubekms/cluster-secrets"),
                 60, "the operator to correct the drift")  # fmt: skip

        second = subprocess.run([KUBEKMS, "dev", "up", "--check", "--state-dir", str(state)],
                                capture_output=True, text=True, timeout=120)  # fmt: skip
        assert second.returncode == 1
        assert "Traceback" not in second.stderr
        assert f"another `kubekms dev up` (pid {stack.pid}) is running on {state}" in second.stderr
        assert stack.poll() is None
        assert "kubekms/cluster-secrets" in cli("key", "list")  # the first stack is untouched

        running_env = subprocess.run([KUBEKMS, "dev", "env", "--state-dir", str(state)], capture_output=True, text=True)
        assert (running_env.returncode, running_env.stderr) == (0, "")

        children = descendants(stack.pid)
        assert len(children) >= 5  # server, etcd, kube-apiserver, operator, plugin
        stack.send_signal(signal.SIGTERM)
        assert stack.wait(timeout=60) == 0
        assert "[kubekms dev] stopping" in log.read_text()
        assert not [pid for pid in children if alive(pid)]
        stale = subprocess.run([KUBEKMS, "dev", "env", "--state-dir", str(state)], capture_output=True, text=True)
        assert stale.returncode == 0 and "export KUBEKMS_ENDPOINT=" in stale.stdout
        assert stale.stderr == f"warning: no `kubekms dev up` is running on {state}: start it again first\n"
    finally:
        if stack.poll() is None:
            stack.kill()
            stack.wait()
