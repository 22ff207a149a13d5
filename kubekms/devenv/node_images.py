"""Images for a local node without a registry: small ones built here, any one imported.

The pause image (every pod's sandbox) is a static Go program in a ``FROM scratch`` image,
built with podman and saved as a docker archive, cached by content. Any archive
(``podman save``) gets into the node's containerd with ``ctr images import``.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from kubekms.devenv.binaries import cache_root, check_go, run_go
from kubekms.devenv.node_config import PAUSE_IMAGE

# PID 1 of every pod sandbox: holds the namespaces, reaps zombies, exits on SIGTERM/SIGINT.
PAUSE_SOURCE = """package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range signals {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			if pid, _ := syscall.Wait4(-1, nil, syscall.WNOHANG, nil); pid <= 0 {
				break
			}
		}
	}
}
"""
PAUSE_USER = "65535:65535"


class ImageBuildError(RuntimeError):
    """Building or importing an image failed; the message carries the tool's output."""


def _checked(args: list[str], what: str) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise ImageBuildError(f"{what} failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout


def _podman(*arguments: str) -> list[str]:
    podman = shutil.which("podman")
    if podman is None:
        raise ImageBuildError("podman is not installed (scripts/node-prereqs installs it)")
    return [podman, *arguments]


def go_image_archive(reference: str, go_source: str, *, user: str | None = None) -> Path:
    """A ``FROM scratch`` image running one static Go program; returns its docker archive (cached)."""
    check_go()
    go_version = _checked(["go", "env", "GOVERSION"], "go env").strip()
    digest = hashlib.sha256("\0".join((reference, go_source, user or "", go_version)).encode()).hexdigest()[:16]
    archive = cache_root() / "images" / f"{reference.replace('/', '_').replace(':', '_')}-{digest}.tar"
    if archive.exists():
        return archive
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="kubekms-image-") as scratch:
        context = Path(scratch)
        (context / "main.go").write_text(go_source)
        (context / "go.mod").write_text("module kubekms.local/program\n\ngo 1.24\n")
        run_go(["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", "program", "."], context, f"compile {reference}")
        lines = ["FROM scratch", "COPY program /program", 'ENTRYPOINT ["/program"]']
        if user:
            lines.insert(2, f"USER {user}")
        (context / "Containerfile").write_text("\n".join(lines) + "\n")
        _checked(
            _podman("build", "--quiet", "--tag", reference, "--file", str(context / "Containerfile"), scratch),
            "podman build",
        )
        partial = archive.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        _checked(_podman("save", "--format", "docker-archive", "--output", str(partial), reference), "podman save")
        partial.rename(archive)
    return archive


def pause_archive() -> Path:
    return go_image_archive(PAUSE_IMAGE, PAUSE_SOURCE, user=PAUSE_USER)


def import_archive(containerd_socket: Path, archive: Path) -> None:
    """Import an image archive (docker or OCI, e.g. from ``podman save``) into containerd's CRI namespace."""
    _checked(
        ["ctr", "--address", str(containerd_socket), "--namespace", "k8s.io", "images", "import", str(archive)],
        f"ctr images import {archive}",
    )
