"""Several real ``kubekms server`` processes on one PostgreSQL database, as the chart's replicas run.

Every replica has its own state_dir holding the same root key and principals (the chart
installs both from Secrets), one worker process, and the same ``database_url_file``.
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from kubekms.devenv.kmsserver import ADMIN, KMSServer

PROJECT = "replicated"


def _configure(server: KMSServer, url_file: Path) -> None:
    config_path = server.state_dir / "server.yaml"
    config = yaml.safe_load(config_path.read_text())
    config_path.write_text(yaml.safe_dump({**config, "database_url_file": str(url_file), "workers": 1}))


@contextmanager
def replicas(
    base: Path, database_url: str, *, count: int = 3, maintenance_interval: float = 10.0
) -> Iterator[list[KMSServer]]:
    """``count`` servers on ``database_url``, started; the first one creates the root key (--init)."""
    url_file = base / "database-url"
    url_file.write_text(database_url + "\n")
    url_file.chmod(0o600)
    root_key = os.urandom(32)  # the chart's Secret: one root key for every replica
    first = KMSServer(base / "replica-0", project_id=PROJECT, maintenance_interval=maintenance_interval)
    servers: list[KMSServer] = []
    try:
        for number in range(count):
            state_dir = base / f"replica-{number}"
            (state_dir / "credentials").mkdir(mode=0o700, parents=True, exist_ok=True)
            if number:  # the same principals everywhere (the chart's principals Secret)
                shutil.copy2(first.credentials_file(ADMIN), state_dir / "credentials" / f"{ADMIN}.yaml")
            project = state_dir / "keystore" / PROJECT
            project.mkdir(mode=0o700, parents=True)
            (project / "root.key").write_bytes(root_key)
            (project / "root.key").chmod(0o600)
            server = first if not number else KMSServer(state_dir, project_id=PROJECT,
                                                        maintenance_interval=maintenance_interval)  # fmt: skip
            _configure(server, url_file)
            servers.append(server)
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()


def metric(server: KMSServer, name: str) -> float:
    """One unlabelled counter or gauge of a server's /metrics."""
    with urllib.request.urlopen(f"{server.endpoint}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    raise AssertionError(f"{name} not in the metrics of {server.endpoint}")
