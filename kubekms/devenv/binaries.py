"""Build the pinned Kubernetes binaries (control plane, node, kubectl) and etcd from source.

Release downloads are not reachable on every machine, but the Go module proxy is.
``k8s.io/kubernetes`` cannot be ``go install``-ed directly: its go.mod replaces every
staging module with a ``./staging`` path and requires it at ``v0.0.0``. We build inside a
small wrapper module that redirects each of those staging modules to its published
``v0.<minor>.<patch>`` tag. etcd needs the same treatment for its ``../`` replaces.

This file uses only the standard library so that ``scripts/build-control-plane`` can
run it before the project is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

KUBERNETES_VERSION = "v1.36.3"
ETCD_VERSION = "v3.6.16"
HELM_VERSION = "v3.22.0"
ASSETS_ENV = "KUBEKMS_ASSETS"
NODE_ASSETS_ENV = "KUBEKMS_NODE_ASSETS"
BINARIES = ("kube-apiserver", "etcd", "etcdctl")
# A real node beside the control plane, plus a kubectl of the same version. Kept in a
# directory of their own so the control plane's cache check and rebuild never touch them.
NODE_BINARIES = ("kubelet", "kube-controller-manager", "kube-scheduler", "kubectl")
_PROXY_FAILURES = ("dial tcp", "connection refused", "no such host", "i/o timeout", "proxyconnect", "TLS handshake")


class BuildError(RuntimeError):
    """A build step failed; the message says which and why."""


@dataclass(frozen=True)
class Pins:
    kubernetes: str = KUBERNETES_VERSION
    etcd: str = ETCD_VERSION

    @property
    def tag(self) -> str:
        return f"k8s-{self.kubernetes}_etcd-{self.etcd}"


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "kubekms"


def assets_dir(pins: Pins = Pins()) -> Path:
    """Where the binaries of ``pins`` live (``KUBEKMS_ASSETS`` overrides)."""
    override = os.environ.get(ASSETS_ENV)
    if override:
        return Path(override)
    return cache_root() / "bin" / pins.tag


def node_assets_dir(version: str = KUBERNETES_VERSION) -> Path:
    """Where the node binaries of ``version`` live (``KUBEKMS_NODE_ASSETS`` overrides)."""
    override = os.environ.get(NODE_ASSETS_ENV)
    if override:
        return Path(override)
    return cache_root() / "bin" / f"node-k8s-{version}"


def binaries_present(directory: Path, names: tuple[str, ...] = BINARIES) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in names)


def _log(message: str) -> None:
    print(f"[kubekms binaries] {message}", file=sys.stderr, flush=True)


def go_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"GOTOOLCHAIN": "local", "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"})
    return env


def run_go(args: list[str], cwd: Path, what: str) -> str:
    _log(f"{what}: {' '.join(args)}")
    started = time.monotonic()
    proc = subprocess.run(args, cwd=cwd, env=go_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-30:])
        hint = ""
        if any(marker in tail for marker in _PROXY_FAILURES):
            proxy = os.environ.get("GOPROXY", "https://proxy.golang.org,direct")
            hint = f"\nhint: the Go module proxy looks unreachable (GOPROXY={proxy}); check network/GOPROXY"
        raise BuildError(f"{what} failed (exit {proc.returncode}):\n{tail}{hint}")
    _log(f"{what}: done in {time.monotonic() - started:.0f}s")
    return proc.stdout


def check_go() -> None:
    go = shutil.which("go")
    if go is None:
        raise BuildError("Go is not on PATH; install Go 1.24+ (https://go.dev/dl/) and retry")
    out = subprocess.run([go, "version"], capture_output=True, text=True).stdout
    match = re.search(r"go(\d+)\.(\d+)", out)
    if not match or (int(match.group(1)), int(match.group(2))) < (1, 24):
        raise BuildError(f"Go 1.24 or newer is required, found: {out.strip()}")


def staging_modules(kubernetes_gomod: str) -> list[str]:
    """Module paths that kubernetes' go.mod replaces with ``./staging/...`` directories."""
    return sorted(set(re.findall(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/", kubernetes_gomod, re.M)))


def _write_wrapper(workdir: Path, module: str, replaces: dict[str, str]) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    lines = [f"module {module}", "", "go 1.24", ""]
    lines += [f"replace {old} => {new}" for old, new in sorted(replaces.items())]
    (workdir / "go.mod").write_text("\n".join(lines) + "\n")
    (workdir / "tools.go").write_text("package tools\n")


def _kubernetes_ldflags(version: str) -> str:
    major, minor = version.removeprefix("v").split(".")[:2]
    flags = []
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return "-s -w " + " ".join(flags)


def build_kubernetes(version: str, commands: tuple[str, ...], out: Path, workdir: Path) -> None:
    """Build ``k8s.io/kubernetes/cmd/<command>`` for each command with one ``go build`` into ``out``.

    One invocation compiles the packages the commands share once and links them in parallel;
    the wrapper module in ``workdir`` is shared by every Kubernetes build of ``version``.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    info = json.loads(
        run_go(
            ["go", "mod", "download", "-json", f"k8s.io/kubernetes@{version}"],
            workdir,
            f"fetch k8s.io/kubernetes {version} metadata",
        )
    )
    if "Error" in info:
        raise BuildError(f"the Go module proxy could not serve k8s.io/kubernetes@{version}: {info['Error']}")
    staged = staging_modules(Path(info["GoMod"]).read_text())
    if not staged:
        raise BuildError(f"no staging replaces found in k8s.io/kubernetes@{version} go.mod")
    staging_version = "v0." + version.removeprefix("v1.")
    _write_wrapper(workdir, "kubekms.local/build/kubernetes", {m: f"{m} {staging_version}" for m in staged})
    _log(f"{len(staged)} staging modules redirected to {staging_version}")
    packages = [f"k8s.io/kubernetes/cmd/{command}" for command in commands]
    names = ", ".join(commands)
    run_go(
        ["go", "get", *(f"{package}@{version}" for package in packages)],
        workdir,
        f"resolve {names} dependencies (downloads a few GB on a cold cache)",
    )
    output = str(out / commands[0]) if len(commands) == 1 else f"{out}/"
    run_go(
        ["go", "build", "-trimpath", "-ldflags", _kubernetes_ldflags(version), "-o", output, *packages],
        workdir,
        f"compile {names} (many minutes on 2 cores)",
    )


def build_kube_apiserver(version: str, out: Path, workdir: Path) -> None:
    build_kubernetes(version, ("kube-apiserver",), out, workdir)


def build_etcd(version: str, out: Path, workdir: Path) -> None:
    _write_wrapper(workdir, "kubekms.local/build/etcd", {})
    run_go(
        ["go", "get", f"go.etcd.io/etcd/server/v3@{version}", f"go.etcd.io/etcd/etcdctl/v3@{version}"],
        workdir,
        f"resolve etcd {version}",
    )
    ldflags = f"-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=kubekms-{version}"
    run_go(
        ["go", "build", "-trimpath", "-ldflags", ldflags, "-o", str(out / "etcd"), "go.etcd.io/etcd/server/v3"],
        workdir,
        "compile etcd",
    )
    run_go(
        ["go", "build", "-trimpath", "-ldflags", ldflags, "-o", str(out / "etcdctl"), "go.etcd.io/etcd/etcdctl/v3"],
        workdir,
        "compile etcdctl",
    )


def _build_into(target: Path, build: Callable[[Path], None]) -> None:
    """Run ``build`` into a scratch directory, then rename it to ``target`` in one step.

    A half-built set is therefore never mistaken for a cached one.
    """
    check_go()
    started = time.monotonic()
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    build(staging)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    _log(f"built in {time.monotonic() - started:.0f}s: {target}")


def _kubernetes_workdir(version: str) -> Path:
    return cache_root() / "build" / f"kubernetes-{version}"


def ensure_binaries(pins: Pins = Pins(), force: bool = False) -> Path:
    """Build the control-plane binaries for ``pins`` unless they are cached; return their directory."""
    target = assets_dir(pins)
    if binaries_present(target) and not force:
        _log(f"already built, nothing to do: {target}")
        return target

    def build(out: Path) -> None:
        build_etcd(pins.etcd, out, cache_root() / "build" / f"etcd-{pins.etcd}")
        build_kube_apiserver(pins.kubernetes, out, _kubernetes_workdir(pins.kubernetes))

    _build_into(target, build)
    return target


def ensure_node_binaries(version: str = KUBERNETES_VERSION, force: bool = False) -> Path:
    """Build kubelet, kube-controller-manager, kube-scheduler and kubectl unless cached; return their directory."""
    target = node_assets_dir(version)
    if binaries_present(target, NODE_BINARIES) and not force:
        _log(f"node binaries already built, nothing to do: {target}")
        return target
    _build_into(target, lambda out: build_kubernetes(version, NODE_BINARIES, out, _kubernetes_workdir(version)))
    return target


def helm_path(version: str = HELM_VERSION) -> Path:
    return cache_root() / "bin" / f"helm-{version}" / "helm"


def ensure_helm(version: str = HELM_VERSION) -> Path:
    """Build the pinned helm CLI (for chart tests) unless cached; return its path."""
    target = helm_path(version)
    if os.access(target, os.X_OK):
        _log(f"helm {version} already built, nothing to do: {target}")
        return target
    workdir = cache_root() / "build" / f"helm-{version}"

    def build(out: Path) -> None:
        _write_wrapper(workdir, "kubekms.local/build/helm", {})
        run_go(["go", "get", f"helm.sh/helm/v3/cmd/helm@{version}"], workdir, f"resolve helm {version}")
        ldflags = f"-s -w -X helm.sh/helm/v3/internal/version.version={version}"
        run_go(
            ["go", "build", "-trimpath", "-ldflags", ldflags, "-o", str(out / "helm"), "helm.sh/helm/v3/cmd/helm"],
            workdir,
            "compile helm",
        )

    _build_into(target.parent, build)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Build kube-apiserver, etcd, etcdctl (--node: also the node binaries) from source, cached."
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument("--print-dir", action="store_true", help="only print the binaries' directory")
    parser.add_argument("--with-helm", action="store_true", help="also build the pinned helm CLI")
    parser.add_argument(
        "--node", action="store_true", help="also build kubelet, kube-controller-manager, kube-scheduler and kubectl"
    )
    args = parser.parse_args(argv)
    if args.print_dir:
        print(assets_dir())
        return 0
    try:
        directory = ensure_binaries(force=args.force)
        if args.with_helm:
            ensure_helm()
        node_directory = ensure_node_binaries() if args.node else None
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(directory)
    if node_directory is not None:
        print(node_directory)  # kubectl at the pinned version lives here too
    return 0


if __name__ == "__main__":
    sys.exit(main())
