"""Helpers of the envelope tests: keys, ARNs, the server's data-key call counter, config files."""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from kubekms.devenv.kmsserver import KMSServer
from kubekms.providers import BackendConfig, open_backend

AWS_REGION = "eu-central-1"
HUAWEI_PROJECT = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
PROVIDERS = ("local", "kubekms", "huaweicloud", "aws")
_names = itertools.count()
KUBEKMS = shutil.which("kubekms") or str(Path(__file__).parents[2] / ".venv" / "bin" / "kubekms")


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("KUBEKMS_")}
    return subprocess.run([KUBEKMS, *args], input=stdin, capture_output=True, timeout=60, env=environment)


def call(config: BackendConfig, operation: str, *args: object) -> object:
    """One backend-protocol call (test set-up: create, disable keys)."""

    async def run() -> object:
        backend = await open_backend(config)
        try:
            return await getattr(backend, operation)(*args)
        finally:
            await backend.close()

    return asyncio.run(run())


def new_key(config: BackendConfig) -> tuple[str, str]:
    """A fresh enabled key: (alias, key id)."""
    alias = f"envelope-{config.provider}-{next(_names)}"
    metadata = call(config, "create_key", alias)
    return alias, metadata.key_id  # type: ignore[attr-defined]


def aws_arn(key_id: str) -> str:
    return f"arn:aws:kms:{AWS_REGION}:default:key/{key_id}"


def data_key_calls(server: KMSServer) -> int:
    """Data-key operations the server answered so far (its own Prometheus counters)."""
    with urllib.request.urlopen(f"{server.endpoint}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "kubekms_server_requests_total" and "datakey" in sample.labels.get("operation", "")
        )
    )


def write_yaml(path: Path, config: BackendConfig) -> Path:
    fields = {
        "provider": config.provider,
        "endpoint": config.endpoint,
        "project_id": config.project_id,
        "region": config.region,
        "credentials_file": str(config.credentials_file) if config.credentials_file else "",
        "state_dir": str(config.state_dir) if config.state_dir else "",
    }
    path.write_text(yaml.safe_dump(fields))
    return path
