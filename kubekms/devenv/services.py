"""ClusterIP Services of one namespace routed to their ready endpoints, for a node without kube-proxy.

The local node (:mod:`kubekms.devenv.node`) routes only the ``kubernetes`` Service. The
chart's operator talks to the chart's server through its Service, so the pods stack runs this:
a loop that mirrors the namespace's Services and Endpoints into DNAT rules of one iptables
chain of its own (what kube-proxy's iptables mode does, for one namespace, first ready
endpoint only). A new server pod (new IP) is followed within a second. The chain and its
jumps are removed on stop.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Iterator

from kubernetes import client

CHAIN = "KUBEKMS-PODS-SERVICES"
HOOKS = ("PREROUTING", "OUTPUT")
INTERVAL = 1.0

Rule = tuple[str, int, str, int]  # cluster IP, port, endpoint IP, endpoint port


def _iptables(*arguments: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["iptables", "-w", "-t", "nat", *arguments], capture_output=True, text=True, check=check)


def desired_rules(api: client.ApiClient, namespace: str) -> list[Rule]:
    core = client.CoreV1Api(api)
    endpoints = {item.metadata.name: item for item in core.list_namespaced_endpoints(namespace).items}
    rules: list[Rule] = []
    for service in core.list_namespaced_service(namespace).items:
        cluster_ip = service.spec.cluster_ip
        found = endpoints.get(service.metadata.name)
        if not cluster_ip or cluster_ip == "None" or found is None:
            continue
        for port in service.spec.ports or []:
            for subset in found.subsets or []:
                target = next((p.port for p in subset.ports or [] if p.name == port.name), None)
                if subset.addresses and target is not None:
                    rules.append((cluster_ip, port.port, subset.addresses[0].ip, target))
                    break
    return sorted(rules)


def _remove_chain() -> None:
    for hook in HOOKS:
        while _iptables("-D", hook, "-j", CHAIN, check=False).returncode == 0:
            pass
    _iptables("-F", CHAIN, check=False)
    _iptables("-X", CHAIN, check=False)


def _write(rules: list[Rule]) -> None:
    _iptables("-F", CHAIN)
    for cluster_ip, port, target_ip, target_port in rules:
        match = ["-d", f"{cluster_ip}/32", "-p", "tcp", "--dport", str(port)]
        _iptables("-A", CHAIN, *match, "-j", "DNAT", "--to-destination", f"{target_ip}:{target_port}")


@contextlib.contextmanager
def routed_services(api: client.ApiClient, namespace: str) -> Iterator[None]:
    """Keep ``namespace``'s ClusterIPs routed while the block runs."""
    _remove_chain()  # a killed run's leftover
    _iptables("-N", CHAIN)
    for hook in HOOKS:
        _iptables("-I", hook, "-j", CHAIN)
    stopping = threading.Event()

    def follow() -> None:
        current: list[Rule] = []
        while not stopping.is_set():
            with contextlib.suppress(Exception):  # an apiserver restart: try again next round
                rules = desired_rules(api, namespace)
                if rules != current:
                    _write(rules)
                    current = rules
            stopping.wait(INTERVAL)

    thread = threading.Thread(target=follow, name=f"services of {namespace}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stopping.set()
        thread.join(timeout=10)
        _remove_chain()
