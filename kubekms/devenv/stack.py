"""``kubekms dev up``: the whole mission on one machine, on the embedded default.

The kubekms server (SQLite keystore in the state directory), etcd and kube-apiserver,
the operator, and the KMS v2 plugin wired to the key the operator manages. The first
run bootstraps in an order that avoids the chicken-and-egg of "the apiserver needs
the plugin, the plugin needs the key, the key comes from a KMSKey in the apiserver":

1. the kubekms server starts (root key created on the first run);
2. etcd + kube-apiserver start without encryption, the CRDs are applied, the operator
   starts, a default KMSBackend and the KMSKey ``kubekms-system/cluster-secrets`` are
   applied and become Ready — a real key in the server;
3. the plugin starts with that key id (its credential may only use that key) and
   kube-apiserver restarts with the KMS v2 EncryptionConfiguration; the operator's
   re-encryption pass then encrypts the Secrets written before (the credentials Secret).

Later runs find the state and start everything already encrypted: the plugin first,
then the control plane with the EncryptionConfiguration.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import functools
import json
import os
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config, dynamic
from kubernetes.client.exceptions import ApiException

from kubekms.devenv import binaries
from kubekms.devenv.clientenv import write_client_env
from kubekms.devenv.controlplane import ControlPlane, control_plane, encryption_config
from kubekms.devenv.kmsserver import ADMIN, KMSServer, Principal, kms_server
from kubekms.devenv.plugin import PROVIDER_NAME, PluginProcess, kms_provider, kubekms_backend_settings
from kubekms.devenv.processes import ManagedProcess, kubekms_argv, wait_for
from kubekms_operator.finalizer_policy import install as install_finalizer_policy
from kubekms_plugin import BACKEND_ACTIONS

REPO_ROOT = Path(__file__).resolve().parents[2]
CRD_DIR = REPO_ROOT / "crds"
NAMESPACE = "kubekms-system"
KEY_NAME = "cluster-secrets"
KEY_ALIAS = "kubekms/cluster-secrets"
BACKEND_NAME = "kubekms-embedded"
CREDENTIALS_SECRET = "kubekms-operator-credentials"
SAMPLE_NAMESPACE = "demo"
SAMPLE_SECRET = "hello"
SAMPLE_VALUE = "kubekms-demo-plaintext-0451"
STORED_PREFIX = f"k8s:enc:kms:v2:{PROVIDER_NAME}:".encode()
READY_TIMEOUT = 180.0
# the operator's default (300 s) would keep a change made behind its back for minutes; the dev stack
# holds a handful of keys, so checking them often costs nothing and shows the drift correction at once
DRIFT_INTERVAL_SECONDS = 15


class StateDirInUse(RuntimeError):
    """Another ``kubekms dev up`` runs on the same state directory."""


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "kubekms" / "dev"


def say(message: str) -> None:
    print(f"[kubekms dev] {message}", flush=True)


@dataclass(frozen=True)
class StatePaths:
    root: Path

    @property
    def kms(self) -> Path:
        return self.root / "kms"

    @property
    def cluster(self) -> Path:
        return self.root / "cluster"

    @property
    def socket(self) -> Path:
        return self.root / "plugin" / "run" / "plugin.sock"  # where PluginProcess puts it

    @property
    def stack_file(self) -> Path:
        return self.root / "stack.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def lock(self) -> Path:
        return self.root / "dev-up.lock"


# --- the pieces --------------------------------------------------------------------------


def start_operator(plane: ControlPlane, paths: StatePaths) -> ManagedProcess:
    env = dict(
        os.environ,
        KUBECONFIG=str(plane.kubeconfig),
        KUBEKMS_REENCRYPTION_INTERVAL="5",
        KUBEKMS_REENCRYPTION_NAMESPACE=NAMESPACE,  # spec.clusterEncryption only for the stack's own KMSKey
    )
    operator = ManagedProcess(
        "kubekms operator",
        kubekms_argv("operator", "--all-namespaces", "--drift-interval", str(DRIFT_INTERVAL_SECONDS)),
        paths.logs / "operator.log",
        env=env,
    )
    operator.start()
    return operator


def start_plugin(server: KMSServer, key_id: str, paths: StatePaths) -> PluginProcess:
    settings = {"backend": kubekms_backend_settings(server, "plugin"), "key": key_id, "poll_interval": "10s"}
    plugin = PluginProcess(paths.root / "plugin", settings)
    plugin.start()
    return plugin


def apply_crds(api: client.ApiClient) -> None:
    extensions = client.ApiextensionsV1Api(api)
    for path in sorted(CRD_DIR.glob("*.yaml")):
        body = yaml.safe_load(path.read_text())
        try:
            extensions.create_custom_resource_definition(body)
        except ApiException as error:
            if error.status != 409:
                raise
    for path in sorted(CRD_DIR.glob("*.yaml")):
        name = yaml.safe_load(path.read_text())["metadata"]["name"]

        def established(crd_name: str = name) -> bool:
            crd = extensions.read_custom_resource_definition(crd_name)
            return any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])

        wait_for(established, 30, f"CRD {name} established")


def apply_objects(api: client.ApiClient, objects: list[dict[str, Any]]) -> None:
    """Create each object (any kind, custom resources included); existing ones are left as they are."""
    resources = dynamic.DynamicClient(api).resources
    for body in objects:
        resource = resources.get(api_version=body["apiVersion"], kind=body["kind"])
        try:
            resource.create(body=body, namespace=body["metadata"].get("namespace"))
        except ApiException as error:
            if error.status != 409:
                raise


def bootstrap_objects(server: KMSServer) -> list[dict[str, Any]]:
    credentials = yaml.safe_load(server.credentials_file("operator").read_text())
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": CREDENTIALS_SECRET, "namespace": NAMESPACE},
            "stringData": {"access_key": credentials["access_key"], "secret_key": credentials["secret_key"]},
        },
        {
            "apiVersion": "kubekms.io/v1alpha1",
            "kind": "KMSBackend",
            "metadata": {"name": BACKEND_NAME},
            "spec": {
                "provider": "kubekms",
                "endpoint": server.endpoint,
                "projectId": server.project_id,
                "credentialsSecretRef": {"namespace": NAMESPACE, "name": CREDENTIALS_SECRET},
                "default": True,
            },
        },
        {
            "apiVersion": "kubekms.io/v1alpha1",
            "kind": "KMSKey",
            "metadata": {"name": KEY_NAME, "namespace": NAMESPACE},
            "spec": {
                "description": "encrypts this cluster's Secrets through the kubekms KMS v2 plugin",
                "aliases": [KEY_ALIAS],
                "rotation": {"enabled": True, "periodDays": 90},
                "deletionPolicy": "Retain",
                "clusterEncryption": {"enabled": True},
            },
        },
    ]


def point_backend_at(api: client.ApiClient, server: KMSServer) -> None:
    """The server listens on a new port each run: tell the KMSBackend from an earlier run."""
    client.CustomObjectsApi(api).patch_cluster_custom_object(
        "kubekms.io", "v1alpha1", "kmsbackends", BACKEND_NAME, {"spec": {"endpoint": server.endpoint}}
    )


def read_key_status(api: client.ApiClient) -> dict[str, Any]:
    body = client.CustomObjectsApi(api).get_namespaced_custom_object(
        "kubekms.io", "v1alpha1", NAMESPACE, "kmskeys", KEY_NAME
    )
    status: dict[str, Any] = body.get("status") or {}
    return status


def is_ready(status: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


# --- evidence ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Evidence:
    stored_prefix: bytes
    plaintext_in_etcd: bool
    read_back: str
    key_id: str
    key_state: str
    key_version: int

    @property
    def ok(self) -> bool:
        return self.stored_prefix == STORED_PREFIX and not self.plaintext_in_etcd and self.read_back == SAMPLE_VALUE


def gather_evidence(plane: ControlPlane, api: client.ApiClient, key: dict[str, Any]) -> Evidence:
    core = client.CoreV1Api(api)
    apply_objects(
        api,
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SAMPLE_NAMESPACE}},
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": SAMPLE_SECRET, "namespace": SAMPLE_NAMESPACE},
                "stringData": {"greeting": SAMPLE_VALUE},
            },
        ],
    )
    raw = plane.etcd_get(f"/registry/secrets/{SAMPLE_NAMESPACE}/{SAMPLE_SECRET}") or b""
    read_back = base64.b64decode(core.read_namespaced_secret(SAMPLE_SECRET, SAMPLE_NAMESPACE).data["greeting"]).decode()
    return Evidence(
        stored_prefix=raw[: len(STORED_PREFIX)],
        plaintext_in_etcd=SAMPLE_VALUE.encode() in raw,
        read_back=read_back,
        key_id=key.get("keyId", ""),
        key_state=str(key.get("keyState", "")),
        key_version=int(key.get("currentVersion") or 0),
    )


def print_evidence(evidence: Evidence, raw: bytes) -> None:
    say(f"raw etcd value of {SAMPLE_NAMESPACE}/{SAMPLE_SECRET} starts with {raw[:60]!r}...")
    say(f"  prefix {STORED_PREFIX.decode()}: {'yes' if evidence.stored_prefix == STORED_PREFIX else 'NO'}")
    say(f"  plaintext {SAMPLE_VALUE!r} in etcd: {'YES (not encrypted!)' if evidence.plaintext_in_etcd else 'no'}")
    say(f"read back through the API: {evidence.read_back!r}")
    say(f"key in the kubekms server: {evidence.key_id} state={evidence.key_state} version={evidence.key_version}")


# --- the run -----------------------------------------------------------------------------


@dataclass
class Stack:
    """The running pieces; tests restart or kill the operator and the plugin one by one."""

    paths: StatePaths
    server: KMSServer
    plane: ControlPlane
    key_id: str
    children: dict[str, ManagedProcess | PluginProcess]  # "operator", "plugin"; stopped at the end

    @functools.cached_property
    def api(self) -> client.ApiClient:
        """One client for the stack's life: an apiserver restart keeps its port and certificates."""
        return config.new_client_from_config(config_file=str(self.plane.kubeconfig))

    def restart_operator(self, *, kill: bool = False) -> None:
        operator = self.children["operator"]
        operator.kill() if kill else operator.stop()
        self.children["operator"] = start_operator(self.plane, self.paths)

    def restart_plugin(self) -> None:
        self.children["plugin"].stop()
        self.children["plugin"] = start_plugin(self.server, self.key_id, self.paths)


@contextlib.contextmanager
def state_dir_lock(paths: StatePaths) -> Iterator[None]:
    """Hold the state directory for this run: a second stack on it would share its etcd data and plugin socket.

    The kernel drops the lock with the process, so a killed run never leaves a stale one.
    """
    descriptor = os.open(paths.lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip() or "unknown"
            raise StateDirInUse(
                f"another `kubekms dev up` (pid {holder}) is running on {paths.root}: use that stack "
                f"(`kubekms dev env`), stop it with Ctrl-C, or give this one another --state-dir"
            ) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(descriptor)


def stack_running(state_dir: Path) -> bool:
    """Whether a ``kubekms dev up`` holds ``state_dir`` now (see :func:`state_dir_lock`)."""
    try:
        descriptor = os.open(StatePaths(state_dir).lock, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)
    return False


@contextlib.contextmanager
def running_stack(state_dir: Path) -> Iterator[Stack]:
    paths = StatePaths(state_dir)
    paths.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    with state_dir_lock(paths):
        paths.logs.mkdir(exist_ok=True)
        with _started(paths) as stack:
            yield stack


@contextlib.contextmanager
def _started(paths: StatePaths) -> Iterator[Stack]:
    say("control-plane binaries (the first run builds them from source: a few minutes)")
    binaries.ensure_binaries()
    known: dict[str, str] = json.loads(paths.stack_file.read_text()) if paths.stack_file.exists() else {}
    principals = [
        Principal(name="operator"),
        Principal(name="plugin", actions=BACKEND_ACTIONS, keys=(KEY_ALIAS,)),
    ]
    with contextlib.ExitStack() as exits:
        say(f"kubekms server (state in {paths.kms})")
        server = exits.enter_context(kms_server(paths.kms, principals=principals))
        say(f"  serving the KMS v1.0 REST wire and the AWS KMS wire on {server.endpoint}")
        children: dict[str, ManagedProcess | PluginProcess] = {}
        exits.callback(lambda: [child.stop() for child in children.values()])
        if "key_id" in known:
            key_id = known["key_id"]
            say("plugin (existing cluster key)")
            children["plugin"] = start_plugin(server, key_id, paths)
            say("etcd + kube-apiserver with KMS v2 encryption")
            plane = exits.enter_context(
                control_plane(
                    encryption_config=encryption_config(kms_provider(f"unix://{paths.socket}")), workdir=paths.cluster
                )
            )
            api = config.new_client_from_config(config_file=str(plane.kubeconfig))
            apply_crds(api)
            install_finalizer_policy(api, (), probe_namespace="default")  # what the chart installs
            point_backend_at(api, server)
            say(f"operator (drift check every {DRIFT_INTERVAL_SECONDS} s)")
            children["operator"] = start_operator(plane, paths)
        else:
            say("etcd + kube-apiserver (first run: encryption is switched on once the key exists)")
            plane = exits.enter_context(control_plane(workdir=paths.cluster))
            api = config.new_client_from_config(config_file=str(plane.kubeconfig))
            say("CRDs, and the policy that writes the operator's finalizer at creation (as the chart does)")
            apply_crds(api)
            install_finalizer_policy(api, (), probe_namespace="default")
            say(f"operator (drift check every {DRIFT_INTERVAL_SECONDS} s)")
            children["operator"] = start_operator(plane, paths)
            say(f"KMSBackend {BACKEND_NAME} and KMSKey {NAMESPACE}/{KEY_NAME}")
            apply_objects(api, bootstrap_objects(server))
            wait_for(lambda: is_ready(read_key_status(api)), READY_TIMEOUT, f"KMSKey {KEY_NAME} Ready")
            key_id = read_key_status(api)["keyId"]
            paths.stack_file.write_text(json.dumps({"key_id": key_id}))
            say(f"  key {key_id} created in the kubekms server")
            say("plugin, then kube-apiserver restarted with KMS v2 encryption")
            children["plugin"] = start_plugin(server, key_id, paths)
            plane.restart_apiserver(encryption_config=encryption_config(kms_provider(f"unix://{paths.socket}")))
        yield Stack(paths=paths, server=server, plane=plane, key_id=key_id, children=children)


def stop_on_signals() -> None:
    """SIGTERM (``kill``, a service manager) and SIGHUP (the terminal closed) stop the stack as Ctrl-C does.

    Without this, either ended the process at once: its children died with it (SIGKILL, see
    ``processes``), etcd and the server without a clean shutdown.
    """

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)


def cli_hint(state_dir: Path) -> str:
    """The shell line that points the CLI at this stack, runnable as printed.

    ``scripts/dev-up`` runs ``.venv/bin/kubekms``, which is on no one's PATH on a fresh machine: the
    line then puts that directory on the PATH first.
    """
    ours = shutil.which("kubekms", path=str(Path(sys.executable).parent))
    on_path = shutil.which("kubekms")
    prefix = ""
    if ours is not None and (on_path is None or Path(on_path).resolve() != Path(ours).resolve()):
        prefix = f'export PATH={shlex.quote(str(Path(ours).parent))}:"$PATH"; '
    option = "" if state_dir == default_state_dir() else f" --state-dir {shlex.quote(str(state_dir))}"
    return f'{prefix}eval "$(kubekms dev env{option})"; kubekms key list'


def run(state_dir: Path, *, check: bool) -> int:
    started = time.monotonic()
    stop_on_signals()
    with running_stack(state_dir) as stack:
        write_client_env(state_dir, stack.server)
        say(f"web console: {stack.server.endpoint}/console/ (sign in with the access_key and secret_key in "
            f"{stack.server.credentials_file(ADMIN)})")  # fmt: skip
        say(f"CLI: {cli_hint(state_dir)}")
        hint = f"kubectl --kubeconfig {stack.plane.kubeconfig} get kmskeys -A"
        return show_evidence(stack.plane, stack.api, read_key_status(stack.api), started, check=check, hint=hint)


def show_evidence(
    plane: ControlPlane, api: client.ApiClient, key: dict[str, Any], started: float, *, check: bool, hint: str
) -> int:
    """Print the evidence; with ``check`` return 0 or 1 at once, else run until Ctrl-C and return 0."""
    evidence = gather_evidence(plane, api, key)
    raw = plane.etcd_get(f"/registry/secrets/{SAMPLE_NAMESPACE}/{SAMPLE_SECRET}") or b""
    print_evidence(evidence, raw)
    say(f"ready in {time.monotonic() - started:.1f}s")
    if check:
        say("check " + ("passed" if evidence.ok else "FAILED"))
        return 0 if evidence.ok else 1
    say(f"kubeconfig: {plane.kubeconfig}")
    say(f"try: {hint}")
    say("press Ctrl-C to stop everything")
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)
    say("stopping")
    return 0
