"""Helpers of the operator tests: the operator as a real subprocess, objects through the real API."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from kubekms.devenv.controlplane import ControlPlane
from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import ManagedProcess, free_port, kubekms_argv, wait_for

GROUP, VERSION = "kubekms.io", "v1alpha1"


def api_client(plane: ControlPlane) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(plane.kubeconfig))


def start_operator(
    plane: ControlPlane,
    log_dir: Path,
    namespaces: list[str],
    *,
    drift: float = 300,
    env: dict[str, str] | None = None,
    metrics_port: int = 0,
    args: tuple[str, ...] = (),
) -> ManagedProcess:
    """``kubekms operator`` as a real process; returns once its liveness endpoint answers."""
    port = free_port()
    argv = kubekms_argv("operator", "--health-interval", "2", *args)
    argv += ["--drift-interval", str(drift), "--liveness", f"http://127.0.0.1:{port}/healthz"]
    argv += ["--metrics-port", str(metrics_port)]
    for namespace in namespaces:
        argv += ["--namespace", namespace]
    environment = dict(os.environ, KUBECONFIG=str(plane.kubeconfig), **(env or {}))
    process = ManagedProcess(
        "kubekms operator", argv, log_dir / f"operator-{uuid.uuid4().hex[:6]}.log", env=environment
    )
    process.start()

    def alive() -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return bool(answer.status == 200)

    if not env or "KUBEKMS_OPERATOR_FAULT" not in env:
        process.wait_until(alive, 60, "the operator's liveness endpoint")
    return process


@contextmanager
def operator_running(
    plane: ControlPlane, log_dir: Path, namespaces: list[str], **options: Any
) -> Iterator[ManagedProcess]:
    process = start_operator(plane, log_dir, namespaces, **options)
    try:
        yield process
    finally:
        process.stop()


class Cluster:
    """KMSKeys, KMSBackends and Secrets of one test, through the official client."""

    def __init__(self, plane: ControlPlane, namespace: str) -> None:
        self.api = api_client(plane)
        self.objects = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)
        self.namespace = namespace
        self.core.create_namespace({"metadata": {"name": namespace}})

    def backend(
        self,
        server: KMSServer,
        name: str,
        principal: str = "admin",
        endpoint: str | None = None,
        provider: str = "kubekms",
        credentials_secret: bool = True,
        secret_key: str | None = None,
        adoption: tuple[str, ...] = (),
    ) -> str:
        """``provider="aws"``: the same server through its AWS KMS wire (the account is the project "default");
        without ``credentials_secret`` the operator uses its own (ambient) AWS identity; ``secret_key``
        replaces the principal's secret in the Secret (a wrong credential); ``adoption``: the namespaces
        (globs) whose KMSKeys may spec.adopt its keys."""
        credentials = yaml.safe_load(server.credentials_file(principal).read_text())
        secret = f"{name}-credentials"
        self.core.create_namespaced_secret(
            self.namespace,
            {
                "metadata": {"name": secret},
                "stringData": {
                    "access_key": credentials["access_key"],
                    "secret_key": credentials["secret_key"] if secret_key is None else secret_key,
                },
            },
        )
        self.objects.create_cluster_custom_object(
            GROUP,
            VERSION,
            "kmsbackends",
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "KMSBackend",
                "metadata": {"name": name},
                "spec": {
                    "provider": provider,
                    "endpoint": endpoint or server.endpoint,
                    **(
                        {"credentialsSecretRef": {"namespace": self.namespace, "name": secret}}
                        if credentials_secret
                        else {}
                    ),
                    **({"region": "eu-west-1"} if provider == "aws" else {"projectId": server.project_id}),
                    **({"adoption": {"namespaces": list(adoption)}} if adoption else {}),
                },
            },
        )
        return name

    def create_key(self, name: str, spec: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "KMSKey",
            "metadata": {"name": name, "annotations": annotations or {}},
            "spec": spec,
        }
        created: dict[str, Any] = self.objects.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "kmskeys", body
        )
        return created

    def key(self, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.objects.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "kmskeys", name
            )
            return found
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def patch_key(self, name: str, patch: dict[str, Any]) -> None:
        self.objects.patch_namespaced_custom_object(GROUP, VERSION, self.namespace, "kmskeys", name, patch)

    def delete_key(self, name: str) -> None:
        self.objects.delete_namespaced_custom_object(GROUP, VERSION, self.namespace, "kmskeys", name)

    def status(self, name: str) -> dict[str, Any]:
        status: dict[str, Any] = (self.key(name) or {}).get("status") or {}
        return status

    def condition(self, name: str, type_: str) -> dict[str, Any]:
        return next((c for c in self.status(name).get("conditions") or [] if c["type"] == type_), {})

    def wait_ready(self, name: str, timeout: float = 60) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            # one read of the object: status, conditions and generation of the same instant (four reads could
            # mix writes of the operator's that came in between)
            key = self.key(name) or {}
            status: dict[str, Any] = key.get("status") or {}
            conditions = {c["type"]: c.get("status") for c in status.get("conditions") or []}
            generation = key.get("metadata", {}).get("generation")
            current = status.get("observedGeneration") == generation
            return status if conditions.get("Synced") == conditions.get("Ready") == "True" and current else None

        return wait_for(ready, timeout, f"KMSKey {self.namespace}/{name} Ready and Synced")

    def events(self, name: str) -> list[client.CoreV1Event]:
        events = self.core.list_namespaced_event(self.namespace, field_selector=f"involvedObject.name={name}")
        return list(events.items)


class LoopbackServer:
    """A TCP server on a free loopback port, its connections handled by ``_handle`` on an asyncio loop
    in a thread of its own; ``with`` starts it and stops it (its open connections cut)."""

    def __init__(self) -> None:
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self._ready.set()
        self._loop.run_forever()

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        handlers = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class CountingProxy(LoopbackServer):
    """A TCP proxy in front of the kubekms server that counts connections and can play dead.

    A fault injector, and the only one here: a stopped server cannot count the attempts
    made against it, and "no retry storm" is a statement about that count. Up, it forwards
    bytes both ways unchanged; down, it accepts and closes at once (a backend that is gone).
    """

    def __init__(self, target_port: int) -> None:
        super().__init__()
        self.target_port = target_port
        self.up = True
        self.connections = 0
        self._open: set[asyncio.StreamWriter] = set()

    def go_down(self) -> None:
        """Refuse new connections and cut the open ones (the client's keep-alive pool too)."""
        self.up = False

        def cut() -> None:
            for writer in list(self._open):
                writer.close()

        self._loop.call_soon_threadsafe(cut)

    def __exit__(self, *_: object) -> None:
        self.go_down()
        super().__exit__()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if not self.up:
            writer.close()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return

        self._open.update((writer, upstream_writer))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        self._open.difference_update((writer, upstream_writer))
