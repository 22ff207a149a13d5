"""A real etcd + kube-apiserver on loopback, started from Python for tests and the demo.

Binaries come from :mod:`kubekms.devenv.binaries` (built from source, cached). The
control plane gets free ports, fresh certificates, an admin kubeconfig and, optionally,
an EncryptionConfiguration; it is torn down completely on exit, including on errors.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import ssl
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from kubekms.devenv.binaries import assets_dir, binaries_present
from kubekms.devenv.pki import PkiFiles, generate_pki
from kubekms.devenv.processes import ManagedProcess, StartError, free_port

ETCD_READY_TIMEOUT = 30.0
APISERVER_READY_TIMEOUT = 120.0


def encryption_config(provider: dict[str, object], resources: tuple[str, ...] = ("secrets",)) -> str:
    """An EncryptionConfiguration writing with ``provider`` and still reading plaintext (identity)."""
    return yaml.safe_dump(
        {
            "apiVersion": "apiserver.config.k8s.io/v1",
            "kind": "EncryptionConfiguration",
            "resources": [{"resources": list(resources), "providers": [provider, {"identity": {}}]}],
        }
    )


@dataclass
class ControlPlane:
    """A running etcd and kube-apiserver. Use :func:`control_plane` to get one."""

    workdir: Path
    assets: Path
    pki: PkiFiles
    etcd_port: int
    apiserver_port: int
    encryption_config: str | None = None
    keep_workdir: bool = False
    # A node (kubekms.devenv.node) will run pods here: ServiceAccount admission on, which needs
    # kube-controller-manager to create each namespace's default ServiceAccount.
    pods: bool = False
    _etcd: ManagedProcess | None = field(default=None, repr=False)
    _apiserver: ManagedProcess | None = field(default=None, repr=False)

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_port}"

    @property
    def apiserver_url(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def encryption_config_path(self) -> Path:
        return self.workdir / "encryption-config.yaml"

    @property
    def apiserver_log(self) -> Path:
        return self.workdir / "kube-apiserver.log"

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        self._start_etcd()
        self._write_kubeconfig()
        self._start_apiserver()

    def stop(self) -> None:
        for process in (self._apiserver, self._etcd):
            if process is not None:
                process.stop()
        if not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def restart_apiserver(self, *, encryption_config: str | None = None, wait_ready: bool = True) -> None:
        """Stop kube-apiserver and start it again (etcd and its data stay)."""
        if encryption_config is not None:
            self.encryption_config = encryption_config
        if self._apiserver is not None:
            self._apiserver.stop()
        self._start_apiserver(wait_ready=wait_ready)

    def stop_apiserver(self) -> None:
        if self._apiserver is not None:
            self._apiserver.stop()

    # --- raw access ----------------------------------------------------------------

    def _etcd_range(self, payload: dict[str, object]) -> list[dict[str, str]]:
        request = urllib.request.Request(  # noqa: S310 - fixed http://127.0.0.1 URL
            f"{self.etcd_url}/v3/kv/range", data=json.dumps(payload).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            kvs: list[dict[str, str]] = json.loads(response.read()).get("kvs") or []
            return kvs

    def etcd_get(self, key: str) -> bytes | None:
        """The raw value etcd stores under ``key``, read through etcd's own API (not the apiserver)."""
        kvs = self._etcd_range({"key": base64.b64encode(key.encode()).decode()})
        return base64.b64decode(kvs[0]["value"]) if kvs else None

    def etcd_keys(self, prefix: str) -> list[str]:
        """Every key in etcd under ``prefix``."""
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        kvs = self._etcd_range(
            {
                "key": base64.b64encode(prefix.encode()).decode(),
                "range_end": base64.b64encode(end.encode()).decode(),
                "keys_only": True,
            }
        )
        return [base64.b64decode(kv["key"]).decode() for kv in kvs]

    def api_get(self, path: str) -> tuple[int, str]:
        """GET ``path`` on kube-apiserver as admin; returns (status, body)."""
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        context.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        try:
            with urllib.request.urlopen(f"{self.apiserver_url}{path}", context=context, timeout=10) as response:  # noqa: S310
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    # --- internals -----------------------------------------------------------------

    def _etcd_healthy(self) -> bool:
        with urllib.request.urlopen(f"{self.etcd_url}/health", timeout=2) as response:  # noqa: S310
            return bool(json.loads(response.read()).get("health") == "true")

    def _apiserver_ready(self) -> bool:
        status, _ = self.api_get("/readyz")
        return status == 200

    def _start_etcd(self) -> None:
        peer_url = f"http://127.0.0.1:{free_port()}"
        argv = [
            str(self.assets / "etcd"),
            "--name=kubekms",
            f"--data-dir={self.workdir / 'etcd-data'}",
            f"--listen-client-urls={self.etcd_url}",
            f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=kubekms={peer_url}",
            "--unsafe-no-fsync=false",
            "--log-level=warn",
        ]
        self._etcd = ManagedProcess("etcd", argv, self.workdir / "etcd.log")
        self._etcd.start()
        self._etcd.wait_until(self._etcd_healthy, ETCD_READY_TIMEOUT, "healthy")

    def _apiserver_argv(self) -> list[str]:
        pki = self.pki
        argv = [
            str(self.assets / "kube-apiserver"),
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={self.apiserver_port}",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--service-cluster-ip-range=10.0.0.0/24",
            f"--service-account-issuer=https://127.0.0.1:{self.apiserver_port}/",
            f"--service-account-key-file={pki.service_account_pub}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction",
            f"--kubelet-client-certificate={pki.kubelet_client_cert}",
            f"--kubelet-client-key={pki.kubelet_client_key}",
            f"--kubelet-certificate-authority={pki.ca_cert}",
            "--kubelet-preferred-address-types=InternalIP,Hostname",
            "--allow-privileged=true",
            "--v=1",
        ]
        if not self.pods:
            argv.append("--disable-admission-plugins=ServiceAccount")
        if self.encryption_config is not None:
            self.encryption_config_path.write_text(self.encryption_config)
            self.encryption_config_path.chmod(0o600)
            argv += [
                f"--encryption-provider-config={self.encryption_config_path}",
                "--encryption-provider-config-automatic-reload=true",
            ]
        return argv

    def _start_apiserver(self, *, wait_ready: bool = True) -> None:
        self._apiserver = ManagedProcess("kube-apiserver", self._apiserver_argv(), self.apiserver_log)
        self._apiserver.start()
        if wait_ready:
            self._apiserver.wait_until(self._apiserver_ready, APISERVER_READY_TIMEOUT, "ready (/readyz)")

    def _write_kubeconfig(self) -> None:
        pki = self.pki
        write_kubeconfig(self.kubeconfig, self.apiserver_url, pki.ca_cert, pki.admin_cert, pki.admin_key)


def write_kubeconfig(path: Path, server: str, ca_cert: Path, client_cert: Path, client_key: Path) -> None:
    """A kubeconfig (mode 0600) authenticating with a client certificate, keys inline."""

    def b64(source: Path) -> str:
        return base64.b64encode(source.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "kubekms-dev", "cluster": {"server": server, "certificate-authority-data": b64(ca_cert)}}
        ],
        "users": [
            {
                "name": "client",
                "user": {"client-certificate-data": b64(client_cert), "client-key-data": b64(client_key)},
            }
        ],
        "contexts": [{"name": "kubekms-dev", "context": {"cluster": "kubekms-dev", "user": "client"}}],
        "current-context": "kubekms-dev",
    }
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump(config))


@contextlib.contextmanager
def control_plane(
    *,
    encryption_config: str | None = None,
    workdir: Path | None = None,
    assets: Path | None = None,
    pods: bool = False,
) -> Iterator[ControlPlane]:
    """Start etcd + kube-apiserver; stop them and remove the temp dir on exit.

    With ``workdir`` given, it is kept (etcd data survives for a later run) and reused.
    With ``pods``, a node started on it can run pods with ServiceAccount tokens.
    """
    binaries = assets or assets_dir()
    if not binaries_present(binaries):
        raise StartError(
            f"control-plane binaries missing in {binaries}; build them with "
            "`kubekms dev binaries` (or scripts/build-control-plane)"
        )
    keep = workdir is not None
    directory = workdir or Path(tempfile.mkdtemp(prefix="kubekms-cp-"))
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    plane = ControlPlane(
        workdir=directory,
        assets=binaries,
        pki=generate_pki(directory / "pki"),
        etcd_port=free_port(),
        apiserver_port=free_port(),
        encryption_config=encryption_config,
        keep_workdir=keep,
        pods=pods,
    )
    try:
        plane.start()
        yield plane
    finally:
        plane.stop()
