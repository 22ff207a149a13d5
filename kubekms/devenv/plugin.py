"""Launcher of a real ``kubekms plugin`` process, for tests, benchmarks and ``kubekms dev``."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import ManagedProcess, free_port, kubekms_argv

START_TIMEOUT = 30.0
PROVIDER_NAME = "kubekms"  # the EncryptionConfiguration's name: stored values start k8s:enc:kms:v2:kubekms:


def kms_provider(plugin_endpoint: str, name: str = PROVIDER_NAME) -> dict[str, object]:
    """The EncryptionConfiguration provider entry for a plugin at ``unix://...``."""
    return {"kms": {"apiVersion": "v2", "name": name, "endpoint": plugin_endpoint, "timeout": "3s"}}


def kubekms_backend_settings(server: KMSServer, principal: str) -> dict[str, str]:
    """The plugin config's ``backend`` section for a kubekms server started by the launcher."""
    return {
        "provider": "kubekms",
        "endpoint": server.endpoint,
        "project_id": server.project_id,
        "credentials_file": str(server.credentials_file(principal)),
    }


class PluginProcess:
    """``settings`` is the plugin's YAML config minus socket and health_address, which are chosen here."""

    def __init__(self, workdir: Path, settings: dict[str, Any], *, name: str = "plugin") -> None:
        self.workdir = workdir
        self.socket = workdir / "run" / f"{name}.sock"
        self.health_port = free_port()
        self.log = workdir / f"{name}.log"
        self.config_path = workdir / f"{name}.yaml"
        workdir.mkdir(parents=True, exist_ok=True)
        config = {**settings, "socket": str(self.socket), "health_address": f"127.0.0.1:{self.health_port}"}
        self.config_path.write_text(yaml.safe_dump(config))
        self.config_path.chmod(0o600)
        self._process: ManagedProcess | None = None

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.health_port}"

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.health_url}/status", timeout=2) as answer:  # noqa: S310 (loopback)
            status: dict[str, Any] = json.loads(answer.read())
            return status

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.health_url}/healthz", timeout=2) as answer:  # noqa: S310
                return bool(answer.status == 200)
        except urllib.error.HTTPError:
            return False

    def start(self, *, wait_healthy: bool = True) -> None:
        argv = kubekms_argv("plugin")
        self._process = ManagedProcess("kubekms-plugin", [*argv, "--config", str(self.config_path)], self.log)
        self._process.start()
        self._process.wait_until(self.socket.exists, START_TIMEOUT, "listening on its socket")
        if wait_healthy:
            self._process.wait_until(self.healthy, START_TIMEOUT, "healthy (/healthz ok)")

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    @property
    def returncode(self) -> int | None:
        return None if self._process is None or self._process.process is None else self._process.process.poll()

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()

    def kill(self) -> None:
        if self._process is not None:
            self._process.kill()
