"""Red team (H14) of the unauthenticated endpoints: /healthz, /readyz and /metrics name no key, alias, principal
or project, and say nothing about whether one exists."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server
from kubekms.errors import KMSError

PROJECT = "projs7zsecret"
ALIAS = "alias-s7z-secret"
OUTSIDER = "outsider-s7z"


def fetch(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return str(answer.read().decode())
    except urllib.error.HTTPError as error:
        return str(error.read().decode())


def test_unauthenticated_endpoints_name_nothing_a_call_named(tmp_path: Path) -> None:
    with kms_server(tmp_path / "kms", project_id=PROJECT, principals=[Principal(OUTSIDER, keys=("none",))]) as server:
        key = server.call("create_key", ALIAS)
        with pytest.raises(KMSError):
            server.call("describe_key", key.key_id, principal=OUTSIDER)  # a denial
        with pytest.raises(KMSError):
            server.call("describe_key", "no-such-alias-s7z")  # a not-found
        pages = {path: fetch(f"{server.endpoint}{path}") for path in ("/healthz", "/readyz", "/metrics")}
    assert "kubekms_server_requests_total" in pages["/metrics"]
    for path, page in pages.items():
        for secret in (PROJECT, ALIAS, OUTSIDER, key.key_id, "no-such-alias-s7z", "admin"):
            assert secret not in page, (path, secret)


def test_an_unknown_path_does_not_become_a_metrics_label(tmp_path: Path) -> None:
    server: KMSServer
    with kms_server(tmp_path / "kms") as server:
        for number in range(3):
            fetch(f"{server.endpoint}/v1.0/probe-s7z-{number}/kms/describe-key")
        metrics = fetch(f"{server.endpoint}/metrics")
    assert "probe-s7z" not in metrics
