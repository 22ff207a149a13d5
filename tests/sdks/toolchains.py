"""Build and run the small programs that drive the server with other languages' official SDKs.

Everything fetched or built is cached under ``CACHE``, keyed by the hash of what it was built from, so a
warm run costs no download and no build. Several pytest processes may build the same entry at once: each
entry is built under an exclusive lock on ``<entry>.lock`` and published only once it is complete.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

CACHE = Path.home() / ".cache" / "kubekms" / "sdks"

BUILD_TIMEOUT = 900.0
_TAIL = 4000
# What a program inherits from this process: enough to find its toolchain and caches, nothing else
# (in particular no AWS_* / GOOGLE_* variable of the developer's shell reaches an SDK's default chain).
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "JAVA_HOME", "GOPATH", "GOCACHE", "GOMODCACHE")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"`{name}` is not installed")
    return path


def _sha256_of_tree(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        relative = path.relative_to(directory).as_posix()
        if relative.startswith(("node_modules/", "target/")) or "/__pycache__/" in f"/{relative}":
            continue
        digest.update(relative.encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _sha256_of_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextlib.contextmanager
def _locked(entry: Path) -> Iterator[None]:
    entry.parent.mkdir(parents=True, exist_ok=True)
    with open(entry.parent / f"{entry.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run_build(argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None) -> None:
    done = subprocess.run(
        list(argv),
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        output = (done.stdout + done.stderr)[-_TAIL:]
        raise RuntimeError(f"{' '.join(argv)} in {cwd} exited {done.returncode}:\n{output}")


def go_binary(module_dir: Path) -> Path:
    """The main package of ``module_dir`` (go.mod + go.sum committed there) built with ``go build -trimpath``."""
    go = _tool("go")
    module_dir = module_dir.resolve()
    entry = CACHE / "go" / _sha256_of_tree(module_dir)
    binary = entry / module_dir.name
    with _locked(entry):
        if binary.is_file():
            return binary
        entry.mkdir(parents=True, exist_ok=True)
        partial = entry / f".{module_dir.name}.partial"
        # -buildvcs=false: no `git status` of the checkout (which fails on a repository another user owns)
        flags = {"GOFLAGS": "-mod=readonly -buildvcs=false"}
        _run_build([go, "build", "-trimpath", "-o", str(partial), "."], module_dir, flags)
        partial.replace(binary)
    return binary


def node_modules(project_dir: Path) -> Path:
    """``npm ci`` of ``project_dir``'s package.json + package-lock.json; the node_modules dir (for NODE_PATH)."""
    npm = _tool("npm")
    project_dir = project_dir.resolve()
    lock_file = project_dir / "package-lock.json"
    entry = CACHE / "node" / _sha256_of_file(lock_file)
    modules = entry / "node_modules"
    complete = entry / ".complete"
    with _locked(entry):
        if complete.is_file():
            return modules
        shutil.rmtree(entry, ignore_errors=True)
        entry.mkdir(parents=True)
        shutil.copy2(project_dir / "package.json", entry / "package.json")
        shutil.copy2(lock_file, entry / "package-lock.json")
        _run_build([npm, "ci", "--no-audit", "--no-fund"], entry)
        complete.touch()
    return modules


def java_classpath(pom_dir: Path) -> str:
    """The dependency classpath of ``pom_dir``'s pom.xml (``mvn dependency:build-classpath``)."""
    mvn = _tool("mvn")
    pom_dir = pom_dir.resolve()
    pom = pom_dir / "pom.xml"
    entry = CACHE / "java" / _sha256_of_file(pom)
    classpath = entry / "classpath.txt"
    with _locked(entry):
        if not classpath.is_file():
            entry.mkdir(parents=True, exist_ok=True)
            partial = entry / ".classpath.partial"
            _run_build(
                [mvn, "-q", "-B", "-f", str(pom), "dependency:build-classpath", f"-Dmdep.outputFile={partial}"],
                pom_dir,
            )
            partial.replace(classpath)
    return classpath.read_text().strip()


def run_json_lines(argv: Sequence[str], env: Mapping[str, str], *, timeout: float = 120) -> list[dict[str, Any]]:
    """Run a program and return the JSON objects it printed, one per stdout line.

    Lines that are not JSON objects (an SDK's own chatter) are skipped; a non-zero exit is an AssertionError
    carrying the tail of stderr and stdout.
    """
    base = {name: os.environ[name] for name in _INHERITED if name in os.environ}
    done = subprocess.run(list(argv), env={**base, **env}, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise AssertionError(
            f"{argv[0]} exited {done.returncode}\n--- stderr ---\n{done.stderr[-_TAIL:]}\n"
            f"--- stdout ---\n{done.stdout[-_TAIL:]}"
        )
    lines: list[dict[str, Any]] = []
    for line in done.stdout.splitlines():
        stripped = line.strip()
        if stripped.startswith("{"):
            lines.append(json.loads(stripped))
    return lines
