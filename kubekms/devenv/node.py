"""A real Kubernetes node beside a local control plane: containerd, kubelet, scheduler, controllers.

Given a running :class:`~kubekms.devenv.controlplane.ControlPlane` (started with ``pods=True``),
:func:`node` starts Debian's containerd (1.6, with runc and the CNI plugins) and the
kubelet, kube-controller-manager and kube-scheduler built from source at the control plane's
version, registers the Node and waits until it is Ready. Pods from Deployments and
StatefulSets run, and static pods from :attr:`Node.manifests`. Images come from archives
(:meth:`Node.import_image`); there is no registry.

What this VM needs (``/work/shared/design/machine-facts.md``): cgroup v1 is allowed
(``failCgroupV1: false``, cgroupfs driver), containerd keeps ``oom_score_adj`` non-negative
(the VM drops CAP_SYS_RESOURCE), and the node's address is on a link made here (the kubelet
refuses loopback; the VM's own interface never carries test traffic).

Needs root. One node per host (fixed link names and ports, whatever the state directory): a
start waits for the host-wide lock of a running node (``lock_timeout``). Everything
it changes on the host is recorded first and undone on stop, or on the next start after a
killed run (:mod:`kubekms.devenv.node_host`).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import shutil
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from kubekms.devenv import node_host, node_images
from kubekms.devenv.binaries import NODE_BINARIES, binaries_present, node_assets_dir
from kubekms.devenv.controlplane import ControlPlane, write_kubeconfig
from kubekms.devenv.node_config import (
    HOST_LOCK,
    NODE_IP,
    NODE_NAME,
    NodePaths,
    cni_config,
    containerd_config,
    kubelet_config,
)
from kubekms.devenv.pki import issue_node_certs
from kubekms.devenv.processes import ManagedProcess, StartError, free_port, wait_for

CONTAINERD_READY_TIMEOUT = 30.0
COMPONENT_READY_TIMEOUT = 60.0
NODE_READY_TIMEOUT = 120.0


class KubectlError(RuntimeError):
    """A kubectl command failed; the message carries its stderr."""


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "kubekms" / "node"


def _healthy(url: str) -> bool:
    """``url`` answers 200 (https: a component's self-signed serving cert on loopback, not verified)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(url, context=context, timeout=2) as response:  # noqa: S310 - loopback URL
        return bool(response.status == 200)


@dataclass
class Node:
    """One running node. Use :func:`node` to get one."""

    plane: ControlPlane
    paths: NodePaths
    assets: Path
    name: str = NODE_NAME
    ip: str = NODE_IP
    lock_timeout: float = 0.0
    _processes: dict[str, ManagedProcess] = field(default_factory=dict, repr=False)
    _lock: IO[str] | None = field(default=None, repr=False)
    _kubelet_healthz_port: int = field(default=0, repr=False)
    _images: list[Path] = field(default_factory=list, repr=False)  # imported again by a restart

    @property
    def manifests(self) -> Path:
        """The kubelet's static pod directory: a pod manifest written here runs."""
        return self.paths.manifests

    @property
    def containerd_socket(self) -> Path:
        return self.paths.containerd_socket

    @property
    def kubectl_path(self) -> Path:
        return self.assets / "kubectl"

    def log(self, component: str) -> Path:
        """The log file of ``containerd``, ``kubelet``, ``kube-controller-manager`` or ``kube-scheduler``."""
        return self.paths.logs / f"{component}.log"

    # --- use ---------------------------------------------------------------------------

    def kubectl(
        self, *arguments: str, stdin: str | None = None, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run the kubectl built with the node (same version) as the control plane's admin.

        With ``check``, a failure raises :class:`KubectlError` naming the command and kubectl's stderr.
        """
        argv = [str(self.kubectl_path), f"--kubeconfig={self.plane.kubeconfig}", *arguments]
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise KubectlError(f"kubectl {' '.join(arguments)} failed (exit {done.returncode}): {done.stderr.strip()}")
        return done

    def import_image(self, archive: Path) -> None:
        """Make an image archive (``podman save``) available to pods (``imagePullPolicy: Never``)."""
        node_images.import_archive(self.containerd_socket, archive)
        if archive not in self._images:
            self._images.append(archive)

    def node_status(self) -> dict[str, object]:
        status, body = self.plane.api_get(f"/api/v1/nodes/{self.name}")
        if status != 200:
            return {}
        node_status: dict[str, object] = json.loads(body).get("status", {})
        return node_status

    def ready(self) -> bool:
        conditions = self.node_status().get("conditions") or []
        assert isinstance(conditions, list)
        return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        if os.geteuid() != 0:
            raise StartError("a node needs root (containerd, runc, network and cgroup setup)")
        self._take_lock()
        self._clean_leftovers()
        node_host.record().save(self.paths.footprint)
        self._prepare_files()
        node_host.setup_network(self.plane.apiserver_port)
        self._start_containerd()
        for archive in [node_images.pause_archive(), *self._images]:
            self.import_image(archive)
        self._start_controllers()
        self.start_kubelet()
        kubelet = self._processes["kubelet"]
        kubelet.wait_until(self.ready, NODE_READY_TIMEOUT, f"Ready as Node {self.name}")

    def stop(self) -> None:
        """Stop every process and undo every host change; safe to call more than once."""
        if self._lock is None:
            return  # never started, or another node holds the host: nothing of ours to undo
        for name in ("kubelet", "kube-scheduler", "kube-controller-manager", "containerd"):
            process = self._processes.pop(name, None)
            if process is not None:
                process.stop()
        if self.paths.footprint.exists():
            node_host.clean(self.paths, node_host.Footprint.load(self.paths.footprint))
            shutil.rmtree(self.paths.run, ignore_errors=True)
            self.paths.footprint.unlink()
        self._lock.close()  # releases the flock
        self._lock = None

    def kill(self) -> None:
        """SIGKILL every process and leave all else behind, as a killed test run does (crash tests)."""
        for process in self._processes.values():
            process.kill()
        self._processes.clear()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def start_kubelet(self) -> None:
        kubelet = ManagedProcess("kubelet", self._kubelet_argv(), self.log("kubelet"))
        self._processes["kubelet"] = kubelet
        kubelet.start()
        kubelet.wait_until(
            lambda: _healthy(f"http://127.0.0.1:{self._kubelet_healthz_port}/healthz"),
            COMPONENT_READY_TIMEOUT,
            "healthy",
        )

    def stop_kubelet(self) -> None:
        """Stop only the kubelet: its pods keep running (e.g. to prove a static pod survives a restart)."""
        kubelet = self._processes.pop("kubelet", None)
        if kubelet is not None:
            kubelet.stop()

    # --- internals -----------------------------------------------------------------

    def _take_lock(self) -> None:
        self.paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock = HOST_LOCK.open("w")

        def taken() -> bool:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        if not taken():
            try:
                what = f"another node on this host to stop ({HOST_LOCK} held)"
                wait_for(taken, self.lock_timeout, what, interval=0.5)
            except TimeoutError as error:
                lock.close()
                raise StartError(str(error)) from None
        self._lock = lock

    def _clean_leftovers(self) -> None:
        """Undo what a killed run left: by its record, or (record lost) by the names we use."""
        if self.paths.footprint.exists():
            footprint = node_host.Footprint.load(self.paths.footprint)
        else:
            footprint = node_host.Footprint()  # nothing known to restore; still remove what is ours
        node_host.clean(self.paths, footprint)
        self.paths.footprint.unlink(missing_ok=True)
        shutil.rmtree(self.paths.run, ignore_errors=True)
        shutil.rmtree(self.paths.logs, ignore_errors=True)

    def _prepare_files(self) -> None:
        paths = self.paths
        for directory in (paths.run, paths.logs, paths.manifests, paths.pod_logs, paths.cni_conf_dir):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        paths.containerd_config.write_text(containerd_config(paths))
        (paths.cni_conf_dir / "10-kubekms.conflist").write_text(cni_config(paths))
        paths.resolv_conf.write_text("")
        pki = self.plane.pki
        certs = issue_node_certs(pki, paths.pki, self.name, self.ip)
        write_kubeconfig(
            paths.kubelet_kubeconfig, self.plane.apiserver_url, pki.ca_cert, certs.client_cert, certs.client_key
        )
        self._kubelet_healthz_port = free_port()
        paths.kubelet_config.write_text(
            kubelet_config(
                paths,
                ca_cert=pki.ca_cert,
                serving_cert=certs.serving_cert,
                serving_key=certs.serving_key,
                healthz_port=self._kubelet_healthz_port,
            )
        )

    def _start_containerd(self) -> None:
        containerd = ManagedProcess(
            "containerd", ["containerd", f"--config={self.paths.containerd_config}"], self.log("containerd")
        )
        self._processes["containerd"] = containerd
        containerd.start()

        def serving() -> bool:
            argv = ["ctr", "--address", str(self.containerd_socket), "version"]
            return subprocess.run(argv, capture_output=True, timeout=5).returncode == 0

        containerd.wait_until(serving, CONTAINERD_READY_TIMEOUT, "serving on its socket")

    def _start_controllers(self) -> None:
        kubeconfig = f"{self.plane.kubeconfig}"
        pki = self.plane.pki
        common = [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            "--leader-elect=false",
            "--v=1",
        ]
        controller_args = [
            f"--root-ca-file={pki.ca_cert}",
            f"--service-account-private-key-file={pki.service_account_key}",
            "--use-service-account-credentials=true",
            f"--cluster-signing-cert-file={pki.ca_cert}",
            f"--cluster-signing-key-file={pki.ca_key}",
        ]
        for name, extra in (("kube-controller-manager", controller_args), ("kube-scheduler", [])):
            port = free_port()
            process = ManagedProcess(
                name, [str(self.assets / name), *common, f"--secure-port={port}", *extra], self.log(name)
            )
            self._processes[name] = process
            process.start()
            health_url = f"https://127.0.0.1:{port}/healthz"
            process.wait_until(functools.partial(_healthy, health_url), COMPONENT_READY_TIMEOUT, "healthy")

    def _kubelet_argv(self) -> list[str]:
        paths = self.paths
        return [
            str(self.assets / "kubelet"),
            f"--config={paths.kubelet_config}",
            f"--kubeconfig={paths.kubelet_kubeconfig}",
            f"--root-dir={paths.kubelet_root}",
            f"--cert-dir={paths.kubelet_root / 'pki'}",
            f"--hostname-override={self.name}",
            f"--node-ip={self.ip}",
            "--v=1",
        ]


@contextlib.contextmanager
def node(
    plane: ControlPlane, *, state_dir: Path | None = None, assets: Path | None = None, lock_timeout: float = 0.0
) -> Iterator[Node]:
    """Start a node on ``plane`` and wait until it is Ready; stop it and undo its host changes on exit.

    With another node running on this host, wait up to ``lock_timeout`` seconds for it to stop.
    """
    binaries = assets or node_assets_dir()
    if not binaries_present(binaries, NODE_BINARIES):
        raise StartError(f"node binaries missing in {binaries}; build them with `scripts/build-control-plane --node`")
    paths = NodePaths(state_dir or default_state_dir())
    running = Node(plane=plane, paths=paths, assets=binaries, lock_timeout=lock_timeout)
    try:
        running.start()
        yield running
    finally:
        running.stop()
