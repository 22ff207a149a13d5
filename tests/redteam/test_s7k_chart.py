"""The Helm chart as rendered: what the operator's service account may read beside the chart's own server.

With ``server.enabled`` the release namespace holds the server's root key (which seals every key
version at rest) and its principals (every access key and secret key). ``operator.credentialSecrets``
empty meant "any Secret in the release namespace", so the operator's account could read both: a
compromised operator pod (or anyone who can act as its service account) held every key of the
keystore. Expected: beside the server, the operator gets only the Secrets it is told of.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes import config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "chart"))
from chart_support import CHART, by_kind, helm, render, write_values

from kubekms.devenv.controlplane import ControlPlane
from kubekms.devenv.stack import apply_crds


def secret_rules(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every rule of a Role or ClusterRole of the chart that grants something on Secrets."""
    roles = by_kind(objects, "Role") + by_kind(objects, "ClusterRole")
    return [rule for role in roles for rule in role["rules"] if "secrets" in rule.get("resources", [])]


def readable(rules: list[dict[str, Any]], secret: str) -> bool:
    return any("get" in rule["verbs"] and secret in rule.get("resourceNames", [secret]) for rule in rules)


@pytest.mark.parametrize(
    "values",
    [
        {"server": {"enabled": True}, "defaultBackend": {"enabled": True}},
        {"server": {"enabled": True, "tls": {"secretName": "kms-tls"}}, "defaultBackend": {"enabled": True}},
        {"server": {"enabled": True}},
        {"server": {"enabled": True}, "operator": {"credentialSecrets": ["kms-credentials"]}},
    ],
    ids=["default-backend", "default-backend-tls", "server-only", "listed"],
)
def test_the_operator_cannot_read_the_servers_root_key_or_principals(tmp_path: Path, values: dict[str, Any]) -> None:
    objects = render(tmp_path, values)
    rules = secret_rules(objects)
    secrets = {body["metadata"]["name"] for body in by_kind(objects, "Secret")}
    assert {"test-kubekms-server-root-key", "test-kubekms-server-principals"} <= secrets
    assert not readable(rules, "test-kubekms-server-root-key")
    assert not readable(rules, "test-kubekms-server-principals")
    if values.get("defaultBackend", {}).get("enabled"):  # still reads what its own backend needs
        assert readable(rules, "kubekms-operator-credentials")
        tls = values["server"].get("tls", {}).get("secretName")
        assert tls is None or readable(rules, tls)
    for listed in values.get("operator", {}).get("credentialSecrets", []):
        assert readable(rules, listed)


def test_with_a_ca_secret_of_its_own_the_operator_cannot_read_the_servers_tls_key(tmp_path: Path) -> None:
    tls = {"secretName": "kms-tls", "caSecretName": "kms-ca"}
    objects = render(tmp_path, {"server": {"enabled": True, "tls": tls}, "defaultBackend": {"enabled": True}})
    rules = secret_rules(objects)
    assert not readable(rules, "kms-tls")
    assert readable(rules, "kms-ca")
    (backend,) = by_kind(objects, "KMSBackend")
    assert backend["spec"]["caSecretRef"] == {"namespace": "kubekms", "name": "kms-ca", "key": "ca.crt"}
    server = by_kind(objects, "StatefulSet")[0]["spec"]["template"]["spec"]
    assert {"name": "tls", "secret": {"secretName": "kms-tls", "defaultMode": 0o440}} in server["volumes"]


def test_without_the_server_an_empty_list_still_means_any_secret_of_the_namespace(tmp_path: Path) -> None:
    (rule,) = secret_rules(render(tmp_path))
    assert rule["verbs"] == ["get"] and "resourceNames" not in rule


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("values", "said"),
    [
        (
            {"server": {"enabled": True}, "defaultBackend": {"enabled": True}},
            "only the Secrets kubekms-operator-credentials",
        ),
        ({"server": {"enabled": True}}, "no Secret in kms"),
        ({}, "any Secret in kms"),
    ],
    ids=["default-backend", "server-only", "no-server"],
)
def test_the_install_notes_say_which_secrets_the_operator_reads(
    tmp_path: Path, control_plane: ControlPlane, values: dict[str, Any], said: str
) -> None:
    apply_crds(config.new_client_from_config(config_file=str(control_plane.kubeconfig)))  # the default KMSBackend
    result = helm(
        "install", "notes", str(CHART), "--dry-run=server", "--namespace", "kms", "--kubeconfig",
        str(control_plane.kubeconfig), "-f", str(write_values(tmp_path, values)),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"It may read {said}" in result.stdout.split("NOTES:", 1)[1]
