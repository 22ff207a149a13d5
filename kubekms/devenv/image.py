"""``kubekms dev image``: the kubekms container image, built here with podman, cached by content.

No image registry needs to be reachable: the base is a Debian bookworm root filesystem made by
``mmdebstrap`` from Debian's package archive and imported into podman. The image's tag is a
digest of everything that goes into it (the Containerfile, pyproject.toml, the package sources
and the base image's id), so a second build of unchanged inputs only checks that the tag exists.

podman runs with ``runc`` and explicit ulimits: this VM refuses crun on its hybrid cgroups and
refuses podman's default rlimits (``docs: /work/shared/design/machine-facts.md``).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kubekms.devenv.binaries import cache_root

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTAINERFILE = REPO_ROOT / "Containerfile"
# What the Containerfile copies, besides itself; .dockerignore's patterns are skipped below.
BUILD_INPUTS = ("pyproject.toml", "README.md", "kubekms", "operator", "kms-plugin", ".dockerignore")
IGNORED_PARTS = ("__pycache__", ".pytest_cache", ".ruff_cache")
IGNORED_SUFFIXES = (".pyc", ".pyo")

SUITE = "bookworm"  # Debian 12: python3 is 3.11, the version kubekms targets
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
BASE_REPOSITORY = "localhost/kubekms-base"
REPOSITORY = "localhost/kubekms"
KEEP_BUILDS = 3  # besides the current one

# The host's trust for HTTPS (a TLS-inspecting egress proxy's CA, pip's cert setting) lent to the
# build's RUN steps only (bind mounts are not committed), so pip reaches PyPI as on the host.
HOST_TRUST = (Path("/etc/ssl/certs/ca-certificates.crt"), Path("/etc/pip.conf"))

# Global podman flags and the run/build flags this VM needs (see the module docstring).
PODMAN_GLOBAL = ("--runtime", "runc")
ULIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1000:1000")


class ImageError(RuntimeError):
    """A build step failed; the message names the step and carries the tail of its output."""


def say(message: str) -> None:
    print(f"[kubekms image] {message}", flush=True)


def podman_argv(*arguments: str) -> list[str]:
    podman = shutil.which("podman")
    if podman is None:
        raise ImageError("podman is not installed (Debian: apt-get install -y podman runc mmdebstrap)")
    return [podman, *PODMAN_GLOBAL, *arguments]


def podman_run_argv(image: str, *arguments: str, options: Iterable[str] = ()) -> list[str]:
    """``podman run --rm`` of ``image`` with the flags this VM needs; ``options`` go before the image."""
    return podman_argv("run", "--rm", *ULIMITS, *options, image, *arguments)


def _podman(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(podman_argv(*arguments), capture_output=True, text=True, timeout=300)


def image_id(reference: str) -> str | None:
    """The id of a local image, None when there is no such image."""
    inspected = _podman("image", "inspect", "--format", "{{.Id}}", reference)
    return inspected.stdout.strip() if inspected.returncode == 0 else None


# --- the base ----------------------------------------------------------------------------


def base_reference() -> str:
    digest = hashlib.sha256(f"{SUITE} minbase {' '.join(sorted(BASE_PACKAGES))}".encode()).hexdigest()[:12]
    return f"{BASE_REPOSITORY}:{SUITE}-{digest}"


def ensure_base() -> str:
    """The local Debian base image (made on first use, ~1 min); its reference."""
    reference = base_reference()
    if image_id(reference):
        say(f"base {reference}: present")
        return reference
    mmdebstrap = shutil.which("mmdebstrap")
    if mmdebstrap is None:
        raise ImageError("mmdebstrap is not installed (Debian: apt-get install -y mmdebstrap)")
    started = time.monotonic()
    say(f"base {reference}: mmdebstrap {SUITE} minbase + {', '.join(BASE_PACKAGES)} (about a minute)")
    rootfs = cache_root() / "image" / f"{SUITE}-rootfs.tar"
    rootfs.parent.mkdir(parents=True, exist_ok=True)
    strap = subprocess.run(
        [mmdebstrap, "--quiet", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", SUITE, str(rootfs)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if strap.returncode != 0:
        raise ImageError(f"mmdebstrap failed (exit {strap.returncode}):\n{_tail(strap.stderr)}")
    say("base: podman import")
    imported = _podman("import", str(rootfs), reference)
    rootfs.unlink()
    if imported.returncode != 0:
        raise ImageError(f"podman import failed:\n{_tail(imported.stderr)}")
    say(f"base: done in {time.monotonic() - started:.0f}s")
    return reference


# --- the image ---------------------------------------------------------------------------


def _input_files() -> Iterator[Path]:
    for name in ("Containerfile", *BUILD_INPUTS):
        path = REPO_ROOT / name
        candidates = sorted(path.rglob("*")) if path.is_dir() else [path]
        for candidate in candidates:
            relative = candidate.relative_to(REPO_ROOT)
            if (
                candidate.is_file()
                and not any(part in IGNORED_PARTS or part.endswith(".egg-info") for part in relative.parts)
                and candidate.suffix not in IGNORED_SUFFIXES
            ):
                yield relative


def stage_context(directory: Path) -> Path:
    """Copy the build inputs into ``directory``: what is digested is exactly what is built, even
    while the working tree changes."""
    for relative in _input_files():
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO_ROOT / relative, target)
    return directory


def content_digest(context: Path, base_id: str) -> str:
    """A digest of a staged context (the Containerfile and the sources it copies) and the base image's id."""
    digest = hashlib.sha256(f"base {base_id}\n".encode())
    for path in sorted(p for p in context.rglob("*") if p.is_file()):
        digest.update(f"{path.relative_to(context)}\n".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Image:
    reference: str  # localhost/kubekms:<content digest>
    base: str
    built: bool  # False when it was already up to date


def _build(reference: str, base: str, context: Path, log_path: Path) -> None:
    argv = podman_argv(
        "build",
        *ULIMITS,
        "--network",
        "host",  # pip reaches PyPI from the build container
        "--layers",
        *[option for path in HOST_TRUST if path.is_file() for option in ("--volume", f"{path}:{path}:ro")],
        "--build-arg",
        f"BASE={base}",
        "--label",
        f"io.kubekms.base={base}",
        "--tag",
        reference,
        "--file",
        str(context / CONTAINERFILE.name),
        str(context),
    )
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert process.stdout is not None
        for line in process.stdout:
            log.write(line)
            if "STEP " in line.split(":", 1)[0]:  # podman's own step counter: progress, one line each
                say("  " + line.strip()[:140])
        code = process.wait()
    if code != 0:
        raise ImageError(f"podman build failed (exit {code}); full log: {log_path}\n{_tail(log_path.read_text())}")


def ensure_image(*, force: bool = False, context: Path | None = None) -> Image:
    """Build the image unless one of the same inputs exists; return it.

    ``context``: a directory :func:`stage_context` filled; by default the working tree is staged now.
    """
    if context is None:
        with tempfile.TemporaryDirectory(prefix="kubekms-image-") as scratch:
            return ensure_image(force=force, context=stage_context(Path(scratch)))
    base = ensure_base()
    base_id = image_id(base)
    if base_id is None:
        raise ImageError(f"base image {base} vanished")
    reference = f"{REPOSITORY}:{content_digest(context, base_id)}"
    if not force and image_id(reference):
        say(f"{reference}: up to date")
        return Image(reference, base, built=False)
    started = time.monotonic()
    say(f"{reference}: podman build (FROM {base})")
    _build(reference, base, context, cache_root() / "image" / "build.log")
    say(f"{reference}: built in {time.monotonic() - started:.0f}s")
    _remove_older(reference)
    return Image(reference, base, built=True)


def _remove_older(current: str) -> None:
    """Untag all but the newest few builds (each is a few hundred MB; another run may still use a
    recent one); one a container still uses stays (rmi refuses)."""
    listing = "{{.CreatedAt}}\t{{.Repository}}:{{.Tag}}"
    listed = _podman("images", "--filter", f"reference={REPOSITORY}", "--format", listing)
    dated = sorted(line.split("\t") for line in listed.stdout.splitlines() if "\t" in line)  # oldest first
    names = [name for _, name in dated if name != current and name.startswith(f"{REPOSITORY}:")]
    older = names[:-KEEP_BUILDS] if len(names) > KEEP_BUILDS else []
    if older:
        _podman("rmi", *older)


def archive(image: Image) -> Path:
    """``image`` as a docker archive (``podman save``) for a node's containerd; cached by the image's tag."""
    target = cache_root() / "image" / f"{image.reference.replace('/', '_').replace(':', '_')}.tar"
    if target.exists():
        return target
    for stale in target.parent.glob(f"{REPOSITORY.replace('/', '_')}_*.tar"):
        stale.unlink()  # earlier builds' archives: a few hundred MB each
    partial = target.with_suffix(".partial")
    saved = _podman("save", "--format", "docker-archive", "--output", str(partial), image.reference)
    if saved.returncode != 0:
        partial.unlink(missing_ok=True)
        raise ImageError(f"podman save {image.reference} failed:\n{_tail(saved.stderr)}")
    partial.rename(target)
    return target


def _tail(text: str, lines: int = 30) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def main(force: bool = False) -> int:
    try:
        image = ensure_image(force=force)
    except ImageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(image.reference)
    return 0
