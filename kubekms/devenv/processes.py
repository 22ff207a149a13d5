"""Child processes for local stacks: logs to files, readiness with a deadline, no orphans.

Every child is started in its own process group and asked (Linux ``PR_SET_PDEATHSIG``)
to be killed when its parent dies, so even a ``kill -9`` of the test runner leaves no
etcd or kube-apiserver behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

_PR_SET_PDEATHSIG = 1


class StartError(RuntimeError):
    """A child did not become ready; the message carries the tail of its log."""


T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float, what: str, *, interval: float = 0.2) -> T:
    """Poll ``condition`` until it returns something truthy and return that; errors count as "not yet".

    Raises TimeoutError naming ``what`` after ``timeout`` seconds (with the last error, if any).
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
        except Exception as error:  # e.g. a server that is still restarting
            last_error, value = error, None
        if value:
            return value
        time.sleep(interval)  # polling interval of a condition with a deadline, not synchronisation
    detail = f" (last error: {last_error})" if last_error else ""
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")


def kubekms_argv(*arguments: str) -> list[str]:
    """Run the ``kubekms`` CLI of this very installation (the interpreter running us)."""
    return [sys.executable, "-m", "kubekms.cli.main", *arguments]


_HANDED_OUT: set[int] = set()  # ports free_port gave this process: never given twice


def free_port() -> int:
    """A loopback port free now, and not one this process was given before.

    The caller's child binds it later; the kernel may hand the same free port to two calls in a row (two
    listeners of one harness then collide), so a port is given once per process.
    """
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def _die_with_parent() -> None:
    if sys.platform == "linux":
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log written)"


class ManagedProcess:
    """One child process whose stdout and stderr go to ``log_path``."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # only prctl(): safe between fork and exec
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``ready`` until true; fail fast if the process exits; show its log on failure."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                code = self.process.returncode if self.process else None
                raise StartError(f"{self.name} exited (code {code}) before {what}:\n{log_tail(self.log_path)}")
            with contextlib.suppress(Exception):
                if ready():
                    return
            time.sleep(0.1)  # polling interval of a condition with a deadline, not synchronisation
        raise StartError(f"{self.name} not {what} after {timeout:.0f}s:\n{log_tail(self.log_path)}")

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds."""
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=grace)

    def kill(self) -> None:
        """SIGKILL at once (crash tests)."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
