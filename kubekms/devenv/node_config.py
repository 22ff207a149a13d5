"""The configuration files of a local node: containerd, the CNI bridge, the kubelet.

Each setting that is not a default is there because this kind of VM needs it (see
``kubekms.devenv.node`` for the why of each).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

NODE_NAME = "kubekms-node"
# The node's address lives on a link the harness makes (a port-less bridge: no `dummy` module
# here): the kubelet refuses a loopback node IP, and the VM's own interface must never carry
# test traffic.
NODE_IP = "10.250.0.1"
NODE_LINK = "kubekms0"
BRIDGE = "kubekms-br0"
CNI_NETWORK = "kubekms-node"
POD_SUBNET = "10.244.0.0/24"
# kube-apiserver's default --service-cluster-ip-range in controlplane.py; .1 is the
# `kubernetes` Service that in-cluster clients use.
SERVICE_SUBNET = "10.0.0.0/24"
KUBERNETES_SERVICE_IP = "10.0.0.1"
PAUSE_IMAGE = "localhost/kubekms/pause:1"
# Host-wide, whatever the state directory: the links, the node IP and the kubepods cgroups are.
HOST_LOCK = Path("/run/kubekms-node.lock")


@dataclass(frozen=True)
class NodePaths:
    """Everything of one node under its state directory."""

    root: Path

    @property
    def footprint(self) -> Path:
        return self.root / "host-footprint.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        """All state of one run; removed (after unmounting) when the node stops."""
        return self.root / "run"

    @property
    def pki(self) -> Path:
        return self.run / "pki"

    @property
    def containerd_config(self) -> Path:
        return self.run / "containerd.toml"

    @property
    def containerd_socket(self) -> Path:
        return self.run / "containerd" / "containerd.sock"

    @property
    def cni_conf_dir(self) -> Path:
        return self.run / "cni" / "net.d"

    @property
    def kubelet_root(self) -> Path:
        return self.run / "kubelet"

    @property
    def kubelet_config(self) -> Path:
        return self.run / "kubelet-config.yaml"

    @property
    def kubelet_kubeconfig(self) -> Path:
        return self.run / "kubelet.kubeconfig"

    @property
    def manifests(self) -> Path:
        return self.run / "manifests"

    @property
    def pod_logs(self) -> Path:
        return self.run / "pod-logs"

    @property
    def resolv_conf(self) -> Path:
        return self.run / "resolv.conf"


def containerd_config(paths: NodePaths) -> str:
    """containerd 1.6 (config version 2) with every directory it allows under the node's state."""
    base = paths.run / "containerd"
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{base / "root"}"
state = "{base / "state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "{paths.containerd_socket}"

[ttrpc]
  address = "{paths.containerd_socket}.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "{base / "opt"}"

[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  # The VM drops CAP_SYS_RESOURCE: a negative oom_score_adj is refused, runc fails every
  # sandbox with "can't get final child's PID from pipe" unless containerd keeps it >= its own.
  restrict_oom_score_adj = true
  disable_apparmor = true

[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
  Root = "{base / "runc"}"

[{cri}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{paths.cni_conf_dir}"
  max_conf_num = 1
"""


def cni_config(paths: NodePaths) -> str:
    """The pod network: a bridge the harness made, host-local addresses kept under the state dir."""
    return json.dumps(
        {
            "cniVersion": "1.0.0",
            "name": CNI_NETWORK,
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": BRIDGE,
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": POD_SUBNET}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(paths.run / "cni" / "ipam"),
                    },
                }
            ],
        },
        indent=2,
    )


def kubelet_config(paths: NodePaths, *, ca_cert: Path, serving_cert: Path, serving_key: Path, healthz_port: int) -> str:
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        # cgroup v1 (hybrid) here: kubelet 1.36 refuses it unless told otherwise
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{paths.containerd_socket}",
        "staticPodPath": str(paths.manifests),
        "podLogsDir": str(paths.pod_logs),
        "address": NODE_IP,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "tlsCertFile": str(serving_cert),
        "tlsPrivateKeyFile": str(serving_key),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca_cert)},
        },
        "authorization": {"mode": "Webhook"},
        # no cluster DNS here, and pods must not reach the VM's resolvers
        "resolvConf": str(paths.resolv_conf),
        "makeIPTablesUtilChains": False,
        # a shared dev VM: never evict test pods for disk or memory pressure
        "evictionHard": {"memory.available": "1Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "fileCheckFrequency": "2s",
        "nodeStatusReportFrequency": "10s",
        "serializeImagePulls": False,
    }
    return yaml.safe_dump(config)
