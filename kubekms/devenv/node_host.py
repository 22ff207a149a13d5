"""What a local node changes on the host, and undoing all of it.

Before the node starts, :func:`record` notes the host's state (sysctls the kubelet and the
CNI bridge change, host directories they create whatever their config says, kubelet
iptables chains already there) in a file under the state directory. :func:`clean` undoes
everything from such a record: it runs on stop, and on start when a killed run left one.
Processes, mounts and network namespaces are found by what is ours (the kubepods
cgroups, our containerd socket, the state directory), never by a broad name.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kubekms.devenv.node_config import (
    BRIDGE,
    CNI_NETWORK,
    KUBERNETES_SERVICE_IP,
    NODE_IP,
    NODE_LINK,
    SERVICE_SUBNET,
    NodePaths,
)

SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "net/ipv4/ip_forward",
)
# containerd bind-mounts this directory on itself (shared) before its first namespace there
NETNS_DIR = "/run/netns"
# Written by the kubelet, containerd or the CNI plugins whatever their configuration says.
HOST_PATHS = (
    "/var/lib/kubelet",
    "/var/log/pods",
    "/var/log/containers",
    "/run/containerd",
    "/run/nri",
    "/var/lib/cni",
)
# Shared with other tools (podman's CNI backend): only our entries go, then empty directories.
SHARED_PATHS = ("/var/log/containers", "/var/lib/cni", NETNS_DIR)
CONTAINER_LOG_LINKS = "/var/log/containers"
CNI_RESULTS = "/var/lib/cni/results"
# containerd's CRI names the network of each sandbox's loopback this way
CNI_LOOPBACK_NETWORK = "cni-loopback"
CGROUP_ROOT = Path("/sys/fs/cgroup")
KUBEPODS = "kubepods"
# Chains of ours (always removed) and the kubelet's canaries (removed if they were not there before).
SERVICE_CHAIN = "KUBEKMS-NODE-SERVICES"
FORWARD_CHAIN = "KUBEKMS-NODE-FORWARD"
KUBELET_CHAINS = ("KUBE-KUBELET-CANARY", "KUBE-FIREWALL", "KUBE-MARK-DROP", "KUBE-MARK-MASQ", "KUBE-POSTROUTING")
TABLES = ("filter", "nat", "mangle")
IPTABLES = ("iptables", "ip6tables")
CLEAN_TIMEOUT = 30.0


class HostError(RuntimeError):
    """A host command failed; the message names it and carries its output."""


@dataclass
class Footprint:
    sysctls: dict[str, str] = field(default_factory=dict)
    absent_paths: list[str] = field(default_factory=list)
    netns_dir_mounted: bool = True  # unknown (no record): leave it
    present_chains: list[str] = field(default_factory=list)  # "<iptables>/<table>/<chain>"

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> Footprint:
        return cls(**json.loads(path.read_text()))


def _run(args: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise HostError(f"{' '.join(args)} failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return proc


def _chains(binary: str, table: str) -> set[str]:
    proc = _run([binary, "-w", "-t", table, "-S"], check=False)
    return {line.split()[1] for line in proc.stdout.splitlines() if line.startswith(("-N ", "-P "))}


def record() -> Footprint:
    sysctls = {}
    for name in SYSCTLS:
        with contextlib.suppress(OSError):
            sysctls[name] = (Path("/proc/sys") / name).read_text().strip()
    present = [
        f"{binary}/{table}/{chain}"
        for binary in IPTABLES
        for table in TABLES
        for chain in _chains(binary, table) & set(KUBELET_CHAINS)
    ]
    return Footprint(
        sysctls=sysctls,
        absent_paths=[p for p in (*HOST_PATHS, NETNS_DIR) if not os.path.lexists(p)],
        present_chains=present,
        netns_dir_mounted=bool(mounts_under(Path(NETNS_DIR))),
    )


# --- network ---------------------------------------------------------------------


def setup_network(apiserver_port: int) -> None:
    """The node's address on a link of its own, the pod bridge, and the one Service a node needs.

    The node's link is a bridge without ports: this VM's kernel has no ``dummy`` link type.

    There is no kube-proxy: the ``kubernetes`` Service (what in-cluster clients use) is a DNAT
    to kube-apiserver on loopback, for host-network pods (OUTPUT) and bridge pods (PREROUTING,
    with ``route_localnet`` on the bridge). Forwarding off the bridge is dropped, so pods reach
    nothing beyond this host, and the Service range is routed to the node's link, never out.
    """
    _run(["ip", "link", "add", NODE_LINK, "type", "bridge"])
    _run(["ip", "addr", "add", f"{NODE_IP}/32", "dev", NODE_LINK])
    _run(["ip", "link", "set", NODE_LINK, "up"])
    _run(["ip", "route", "add", SERVICE_SUBNET, "dev", NODE_LINK])
    _run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    _run(["ip", "link", "set", BRIDGE, "up"])
    Path(f"/proc/sys/net/ipv4/conf/{BRIDGE}/route_localnet").write_text("1")
    service = ["-d", f"{KUBERNETES_SERVICE_IP}/32", "-p", "tcp", "--dport", "443"]
    _run(["iptables", "-w", "-t", "nat", "-N", SERVICE_CHAIN])
    dnat = ["-j", "DNAT", "--to-destination", f"127.0.0.1:{apiserver_port}"]
    _run(["iptables", "-w", "-t", "nat", "-A", SERVICE_CHAIN, *service, *dnat])
    for hook in ("PREROUTING", "OUTPUT"):
        _run(["iptables", "-w", "-t", "nat", "-I", hook, "-j", SERVICE_CHAIN])
    _run(["iptables", "-w", "-N", FORWARD_CHAIN])
    _run(["iptables", "-w", "-A", FORWARD_CHAIN, "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT"])
    _run(["iptables", "-w", "-A", FORWARD_CHAIN, "-i", BRIDGE, "-j", "DROP"])
    _run(["iptables", "-w", "-A", FORWARD_CHAIN, "-o", BRIDGE, "-j", "DROP"])
    _run(["iptables", "-w", "-I", "FORWARD", "-j", FORWARD_CHAIN])


def _remove_chain(binary: str, table: str, chain: str) -> None:
    """Delete every rule jumping to ``chain``, then the chain itself."""
    if chain not in _chains(binary, table):
        return
    rules = _run([binary, "-w", "-t", table, "-S"]).stdout.splitlines()
    for rule in rules:
        words = shlex.split(rule)
        if words[:1] == ["-A"] and words[1] != chain and "-j" in words and words[words.index("-j") + 1] == chain:
            _run([binary, "-w", "-t", table, "-D", *words[1:]], check=False)
    _run([binary, "-w", "-t", table, "-F", chain], check=False)
    _run([binary, "-w", "-t", table, "-X", chain], check=False)


def _clean_network(footprint: Footprint) -> None:
    _remove_chain("iptables", "nat", SERVICE_CHAIN)
    _remove_chain("iptables", "filter", FORWARD_CHAIN)
    for binary in IPTABLES:
        for table in TABLES:
            for chain in KUBELET_CHAINS:
                if f"{binary}/{table}/{chain}" not in footprint.present_chains:
                    _remove_chain(binary, table, chain)
    for link in (BRIDGE, NODE_LINK):  # the route and addresses go with the links
        _run(["ip", "link", "del", link], check=False)


def links_present() -> list[str]:
    return [link for link in (BRIDGE, NODE_LINK) if Path(f"/sys/class/net/{link}").exists()]


# --- processes, namespaces, mounts, cgroups ----------------------------------------


def _kubepods_dirs() -> list[Path]:
    return sorted(path for path in CGROUP_ROOT.glob(f"*/{KUBEPODS}") if path.is_dir())


def kubepods_pids() -> set[int]:
    pids: set[int] = set()
    for top in _kubepods_dirs():
        for procs in top.rglob("cgroup.procs"):
            with contextlib.suppress(OSError):
                pids.update(int(pid) for pid in procs.read_text().split())
    return pids


def shim_pids(containerd_socket: Path) -> set[int]:
    """containerd shims serving our containerd (they outlive it: started detached)."""
    pids = set()
    marker = str(containerd_socket).encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if argv and b"containerd-shim" in argv[0] and marker in argv:
                pids.add(int(entry.name))
    return pids


def _netns_inodes(pids: set[int]) -> set[int]:
    inodes = set()
    for pid in pids:
        with contextlib.suppress(OSError):
            inodes.add(os.stat(f"/proc/{pid}/ns/net").st_ino)
    return inodes


def alive(pid: int) -> bool:
    """Running, not a zombie (an orphaned shim is reaped by PID 1, which may take its time)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _kill_all(pids: set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + CLEAN_TIMEOUT
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)  # polling interval of a condition with a deadline
    raise HostError(f"timed out after {CLEAN_TIMEOUT:.0f}s waiting for {what}")


def _unescape(field_: str) -> str:
    return field_.encode().decode("unicode_escape")  # mountinfo escapes space, tab, newline, backslash as octal


def mounts_under(directory: Path) -> list[str]:
    prefix = str(directory).rstrip("/") + "/"
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = _unescape(line.split()[4])
        if point == prefix.rstrip("/") or point.startswith(prefix):
            points.append(point)
    return points


def _unmount(point: str) -> None:
    if _run(["umount", point], check=False).returncode != 0:
        _run(["umount", "--lazy", point], check=False)


def _unmount_all_under(directory: Path) -> None:
    # deepest first; a mount may be stacked several times on one point
    for _ in range(5):
        points = mounts_under(directory)
        if not points:
            return
        for point in sorted(points, key=len, reverse=True):
            _unmount(point)
    if points := mounts_under(directory):
        raise HostError(f"still mounted after unmounting: {points}")


def _remove_netns(inodes: set[int]) -> None:
    netns = Path(NETNS_DIR)
    if not netns.is_dir():
        return
    for entry in netns.iterdir():
        with contextlib.suppress(OSError):
            if entry.stat().st_ino in inodes:
                _unmount(str(entry))
                entry.unlink()


def _prune_empty(top: Path) -> None:
    for directory in sorted(top.rglob("*/"), key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            directory.rmdir()
    with contextlib.suppress(OSError):
        top.rmdir()


def _remove_cgroups() -> None:
    def gone() -> bool:
        for top in _kubepods_dirs():
            _prune_empty(top)
        return not _kubepods_dirs()

    _wait(gone, "the kubepods cgroups to be removable")


def stop_workloads(containerd_socket: Path) -> set[int]:
    """Kill every pod process and our containerd's shims; return the pods' network namespaces."""
    pids = kubepods_pids()
    inodes = _netns_inodes(pids)
    _kill_all(pids)
    _wait(lambda: not kubepods_pids(), "the pods' processes to exit")
    shims = shim_pids(containerd_socket)
    _kill_all(shims)
    _wait(lambda: not any(alive(pid) for pid in shims), "containerd's shims to exit")
    return inodes


# --- the whole undo ------------------------------------------------------------------


def _restore_sysctls(footprint: Footprint) -> None:
    for name, value in footprint.sysctls.items():
        with contextlib.suppress(OSError):
            target = Path("/proc/sys") / name
            if target.read_text().strip() != value:
                target.write_text(value)


def _remove_host_paths(footprint: Footprint, paths: NodePaths) -> None:
    for path in footprint.absent_paths:
        if path not in SHARED_PATHS:
            _unmount_all_under(Path(path))
            subprocess.run(["rm", "-rf", "--one-file-system", path], check=False)
    logs = Path(CONTAINER_LOG_LINKS)
    if logs.is_dir():
        for link in logs.iterdir():
            with contextlib.suppress(OSError):
                if link.is_symlink() and os.readlink(link).startswith(str(paths.pod_logs)):
                    link.unlink()
    results = Path(CNI_RESULTS)
    if results.is_dir():
        for network in (CNI_NETWORK, CNI_LOOPBACK_NETWORK):
            for result in results.glob(f"{network}-*"):
                result.unlink(missing_ok=True)
    netns = Path(NETNS_DIR)
    if not footprint.netns_dir_mounted and netns.is_dir() and not any(netns.iterdir()):
        _unmount_all_under(netns)
    for path in footprint.absent_paths:
        if path in SHARED_PATHS and Path(path).is_dir():
            _prune_empty(Path(path))


def clean(paths: NodePaths, footprint: Footprint) -> None:
    """Undo a node's host changes. Its kubelet and containerd must not be running any more."""
    _remove_netns(stop_workloads(paths.containerd_socket))
    _unmount_all_under(paths.run)
    _remove_cgroups()
    _clean_network(footprint)
    _remove_host_paths(footprint, paths)
    _restore_sysctls(footprint)
