"""A node started over the leftovers of a killed run cleans them first; stopping the node leaves
nothing on the host; and the same node starts again afterwards."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from kubekms.devenv import node_host
from kubekms.devenv.node import Node

pytestmark = pytest.mark.node


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(cmdline)
    return found


def _pod(name: str, image: str) -> str:
    container = {"name": "c", "image": image, "imagePullPolicy": "Never"}
    spec = {"terminationGracePeriodSeconds": 2, "containers": [container]}
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})


def _run_pod(node: Node, namespace: str, name: str, image: str) -> None:
    node.kubectl("apply", "-n", namespace, "-f", "-", stdin=_pod(name, image))
    node.kubectl("wait", "-n", namespace, f"pod/{name}", "--for=condition=Ready", "--timeout=90s")


def test_start_after_a_killed_run_removes_its_leftovers(node: Node, probe_image: str, namespace: str) -> None:
    _run_pod(node, namespace, "orphan", probe_image)
    orphans = node_host.kubepods_pids() | node_host.shim_pids(node.containerd_socket)
    node.kill()  # kubelet and containerd die; shims and containers live on, as after a killed test run
    assert all(Path(f"/proc/{pid}").exists() for pid in orphans)

    node.start()

    assert not any(node_host.alive(pid) for pid in orphans)
    assert node.ready()


def test_stop_undoes_every_host_change_and_start_works_again(node: Node, probe_image: str, namespace: str) -> None:
    _run_pod(node, namespace, "running", probe_image)
    pod_processes = node_host.kubepods_pids()
    assert pod_processes and node_host.shim_pids(node.containerd_socket)
    assert node_host.mounts_under(node.paths.root)
    pod_netns = {os.stat(f"/proc/{pid}/ns/net").st_ino for pid in pod_processes}
    netns_files = [entry for entry in Path("/run/netns").iterdir() if entry.stat().st_ino in pod_netns]
    assert netns_files  # the pod's network namespace, bind-mounted by containerd
    originals = node_host.Footprint.load(node.paths.footprint).sysctls

    node.stop()
    try:
        assert _processes_mentioning(str(node.paths.root)) == []  # containerd, kubelet, shims
        # ended; a zombie awaits its reaping by PID 1 (orphaned when its shim was killed), which may take its time
        assert not any(node_host.alive(pid) for pid in pod_processes)
        assert list(Path("/sys/fs/cgroup").glob("*/kubepods")) == []
        assert node_host.mounts_under(node.paths.root) == []
        assert node_host.links_present() == []
        assert not any(path.exists() for path in netns_files)
        for name, value in originals.items():
            assert (Path("/proc/sys") / name).read_text().strip() == value, name
        rules = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
        assert "KUBEKMS-" not in rules
        assert not node.paths.run.exists()
    finally:
        node.start()  # the same node object starts again, its imported images included
    assert node.ready()
    _run_pod(node, namespace, "again", probe_image)
