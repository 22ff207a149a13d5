"""The chart through the pinned helm: lint, template, values schema, CRDs, security settings, RBAC as rendered."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml
from chart_support import CHART, CRD_DIR, FULL_VALUES, by_kind, helm, one, render, write_values

from kubekms.server.config import ServerConfig
from kubekms.server.principals import parse_principals
from kubekms_operator import finalizer_policy


def rules_for(role: dict[str, Any], resource: str) -> list[dict[str, Any]]:
    return [rule for rule in role["rules"] if resource in rule.get("resources", [])]


@pytest.mark.parametrize("values", [None, FULL_VALUES], ids=["default", "full"])
def test_helm_lint_passes(tmp_path: Path, values: dict[str, Any] | None) -> None:
    args = ["lint", str(CHART), "--strict"]
    if values is not None:
        args += ["-f", str(write_values(tmp_path, values))]
    result = helm(*args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_default_values_render_only_the_operator(tmp_path: Path) -> None:
    objects = render(tmp_path)
    kinds = sorted(body["kind"] for body in objects)
    assert kinds == sorted(["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Deployment",
                            "Service", "PodDisruptionBudget"])  # fmt: skip
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2  # one leads (holds the Lease), one stands by
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/kubekms/kubekms:0.1.0"
    assert container["args"][:2] == ["operator", "--all-namespaces"]
    assert {"--leader-elect", "--leader-election-namespace=kubekms", "--leader-election-name=test-kubekms-operator",
            "--lease-duration=15", "--renew-deadline=10", "--retry-period=2"} <= set(container["args"])  # fmt: skip
    assert one(objects, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    (credentials_role,) = [
        role for role in by_kind(objects, "Role") if role["metadata"]["name"].endswith("-credentials")
    ]
    lease_rules = rules_for(credentials_role, "leases")
    assert {verb for rule in lease_rules for verb in rule["verbs"]} == {"create", "get", "update"}
    assert all(
        rule.get("resourceNames") == ["test-kubekms-operator"] for rule in lease_rules if "update" in rule["verbs"]
    )
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}


def test_full_values_render_server_backend_and_reencryption(tmp_path: Path) -> None:
    objects = render(tmp_path, FULL_VALUES, namespace="kms")
    statefulset = one(objects, "StatefulSet")
    claim = statefulset["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    server = statefulset["spec"]["template"]["spec"]["containers"][0]
    assert server["args"] == ["server", "--config", "/etc/kubekms/server.yaml"]
    assert "--init" not in server["args"]  # a missing root key must stop the server, never be replaced
    assert server["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert server["livenessProbe"]["httpGet"]["path"] == "/healthz"

    backend = one(objects, "KMSBackend")
    assert backend["spec"]["provider"] == "kubekms"
    assert backend["spec"]["endpoint"] == "http://test-kubekms-server.kms.svc:8443"
    assert backend["spec"]["projectId"] == "cluster"
    assert backend["spec"]["credentialsSecretRef"]["namespace"] == "kms"
    # kept on uninstall: its finalizer outlives the operator that would remove it
    assert backend["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"

    secrets = {body["metadata"]["name"]: body for body in by_kind(objects, "Secret")}
    root_key = secrets["test-kubekms-server-root-key"]
    assert root_key["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert len(base64.b64decode(root_key["data"]["root.key"])) == 32
    credentials = secrets[backend["spec"]["credentialsSecretRef"]["name"]]["stringData"]
    principals = secrets["test-kubekms-server-principals"]["stringData"]["principals.yaml"]
    assert credentials["access_key"] in principals and credentials["secret_key"] in principals

    config = one(objects, "ConfigMap")["data"]["server.yaml"]
    assert "state_dir: /var/lib/kubekms/state" in config and "cmk_limit: 50" in config


def test_secret_access_is_cluster_wide_only_with_reencryption(tmp_path: Path) -> None:
    off = one(render(tmp_path, {"operator": {"credentialSecrets": ["kms-credentials"]}}), "ClusterRole")
    assert rules_for(off, "secrets") == []
    assert all("nonResourceURLs" not in rule for rule in off["rules"])
    on = one(render(tmp_path, FULL_VALUES), "ClusterRole")
    assert rules_for(on, "secrets")[0]["verbs"] == ["get", "list", "create", "update", "patch"]


def test_credential_role_names_only_the_listed_secrets(tmp_path: Path) -> None:
    role = one(render(tmp_path, FULL_VALUES), "Role")
    (rule,) = rules_for(role, "secrets")
    assert rule["verbs"] == ["get"]
    assert rule["resourceNames"] == ["kms-credentials", "kubekms-operator-credentials"]
    unrestricted = one(render(tmp_path), "Role")["rules"][0]
    assert "resourceNames" not in unrestricted and unrestricted["verbs"] == ["get"]


def test_every_container_is_locked_down(tmp_path: Path) -> None:
    objects = render(tmp_path, FULL_VALUES)
    workloads = by_kind(objects, "Deployment") + by_kind(objects, "StatefulSet")
    assert len(workloads) == 2
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        for container in pod.get("initContainers", []) + pod["containers"]:
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"]["drop"] == ["ALL"]
            assert context["seccompProfile"]["type"] == "RuntimeDefault"
            assert container["resources"]["limits"]


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"operator": {"replicas": -1}}, "/operator/replicas"),
        ({"operator": {"leaderElection": {"leaseDurationSeconds": 0}}}, "/operator/leaderElection"),
        ({"server": {"database": {"urlSecret": "Not_A_Secret"}}}, "/server/database/urlSecret"),
        ({"operator": {"driftIntervalSeconds": "often"}}, "/operator/driftIntervalSeconds"),
        ({"operator": {"watchNamespaces": ["Not_A_Namespace"]}}, "/operator/watchNamespaces/0"),
        ({"server": {"port": 70000}}, "/server/port"),
        ({"server": {"projectId": "a/b"}}, "/server/projectId"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"operator": {"resources": {"limits": {"memory": "lots"}}}}, "/operator/resources/limits/memory"),
        ({"operatr": {"enabled": True}}, "operatr"),
    ],
)
def test_schema_refuses_bad_values(tmp_path: Path, values: dict[str, Any], complaint: str) -> None:
    result = helm("template", "test", str(CHART), "-f", str(write_values(tmp_path, values)))
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert complaint in result.stderr


def test_default_backend_without_server_is_refused(tmp_path: Path) -> None:
    result = helm(
        "template", "test", str(CHART), "-f", str(write_values(tmp_path, {"defaultBackend": {"enabled": True}}))
    )
    assert result.returncode != 0
    assert "defaultBackend.enabled needs server.enabled" in result.stderr


def test_chart_crds_are_the_files_in_crds(tmp_path: Path) -> None:
    """The chart ships crds/ itself (a symlink): the packaged chart holds exactly those bytes."""
    names = sorted(path.name for path in CRD_DIR.glob("*.yaml"))
    assert names == ["kubekms.io_kmsbackends.yaml", "kubekms.io_kmskeys.yaml"]
    assert sorted(path.name for path in (CHART / "crds").glob("*.yaml")) == names
    result = helm("package", str(CHART), "--destination", str(tmp_path))
    assert result.returncode == 0, result.stderr
    (package,) = tmp_path.glob("kubekms-*.tgz")
    with tarfile.open(package) as archive:  # read in place: nothing of the archive is written to disk
        packaged = {
            PurePosixPath(member.name).name: archive.extractfile(member).read()  # type: ignore[union-attr]
            for member in archive.getmembers()
            if member.isfile() and PurePosixPath(member.name).parent == PurePosixPath("kubekms/crds")
        }
    assert packaged == {name: (CRD_DIR / name).read_bytes() for name in names}


@pytest.mark.parametrize("tls", ["", "kubekms-server-tls"], ids=["http", "tls"])
def test_rendered_server_config_and_principals_load(tmp_path: Path, tls: str) -> None:
    """The server's own loaders accept what the chart writes (unknown settings or bad principals would stop it)."""
    values = {**FULL_VALUES, "server": {**FULL_VALUES["server"], "tls": {"secretName": tls}}}
    objects = render(tmp_path, values)
    config_path = tmp_path / "server.yaml"
    config_path.write_text(one(objects, "ConfigMap")["data"]["server.yaml"])
    config = ServerConfig.load(config_path)
    assert (config.host, config.port, config.cmk_limit) == ("0.0.0.0", 8443, 50)
    assert config.principals_file == Path("/run/kubekms/principals.yaml")
    assert (config.tls_cert is not None) == bool(tls)
    statefulset = one(objects, "StatefulSet")["spec"]["template"]["spec"]
    mounts = {m["mountPath"] for m in statefulset["containers"][0]["volumeMounts"]}
    assert {"/etc/kubekms", str(config.principals_file.parent), "/var/lib/kubekms"} <= mounts
    assert str(config.state_dir).startswith("/var/lib/kubekms/")
    if tls:
        assert str(config.tls_cert.parent) in mounts
        assert one(objects, "KMSBackend")["spec"]["endpoint"].startswith("https://")
        assert one(objects, "KMSBackend")["spec"]["caSecretRef"]["name"] == tls
    secrets = {body["metadata"]["name"]: body for body in by_kind(objects, "Secret")}
    principals_text = secrets["test-kubekms-server-principals"]["stringData"]["principals.yaml"]
    (operator,) = [parse_principals(yaml.safe_load(principals_text), source="chart").get(
        secrets["kubekms-operator-credentials"]["stringData"]["access_key"]
    )]  # fmt: skip
    assert operator is not None and operator.name == "operator" and operator.projects == frozenset({"cluster"})


def test_long_release_names_stay_within_kubernetes_limits(tmp_path: Path) -> None:
    objects = render(tmp_path, FULL_VALUES, release="a-release-name-of-the-longest-length-helm-allows-x")
    for body in objects:
        limit = {"Service": 63, "StatefulSet": 52}.get(body["kind"], 253)  # DNS label; StatefulSet pod label
        assert len(body["metadata"]["name"]) <= limit, (body["kind"], body["metadata"]["name"])


def test_operator_reads_the_settings_the_deployment_passes(tmp_path: Path) -> None:
    """The Deployment's environment, given to the operator's own module: a renamed variable would be ignored."""
    values = {"operator": {"reencryption": {"enabled": True, "maxRate": 7, "kmsProviderName": "etcd-kms"}}}
    (container,) = one(render(tmp_path, values), "Deployment")["spec"]["template"]["spec"]["containers"]
    environment = {variable["name"]: variable["value"] for variable in container["env"] if "value" in variable}
    script = (
        "import os; from kubekms_operator.settings import ReencryptionSettings as S; "
        "s = S.from_environment(os.environ); print(s.provider_name, s.max_rate)"
    )
    read_back = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, **environment}, capture_output=True, text=True, timeout=60
    )
    assert read_back.returncode == 0, read_back.stderr
    assert read_back.stdout.split() == ["etcd-kms", "7.0"]


REPLICATED = {**FULL_VALUES, "server": {**FULL_VALUES["server"], "replicas": 3, "database": {"urlSecret": "kms-db"}}}


def test_server_replicas_on_postgresql_render_a_deployment_with_a_budget(tmp_path: Path) -> None:
    objects = render(tmp_path, REPLICATED)
    assert by_kind(objects, "StatefulSet") == []
    (server,) = [d for d in by_kind(objects, "Deployment") if d["metadata"]["name"] == "test-kubekms-server"]
    assert server["spec"]["replicas"] == 3
    pod = server["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["database"]["secret"]["secretName"] == "kms-db"
    assert volumes["data"]["emptyDir"]["medium"] == "Memory"  # the root key's copy, never on a node's disk
    assert volumes["root-key"]["secret"]["secretName"] == "test-kubekms-server-root-key"  # one root key for all
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"name": "database", "mountPath": "/etc/kubekms-database", "readOnly": True} in container["volumeMounts"]
    budgets = {b["metadata"]["name"]: b["spec"] for b in by_kind(objects, "PodDisruptionBudget")}
    assert budgets["test-kubekms-server"]["maxUnavailable"] == 1
    assert budgets["test-kubekms-server"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "server"
    config_path = tmp_path / "server.yaml"
    config_path.write_text(one(objects, "ConfigMap")["data"]["server.yaml"])
    config = ServerConfig.load(config_path)
    assert config.database_url_file == Path("/etc/kubekms-database/url") and config.workers == 1


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"server": {"enabled": True, "replicas": 2}}, "server.replicas > 1 needs server.database.urlSecret"),
        ({"operator": {"leaderElection": {"leaseDurationSeconds": 10, "renewDeadlineSeconds": 10,
                                          "retryPeriodSeconds": 2}}}, "retryPeriodSeconds < renewDeadlineSeconds"),
    ],
)  # fmt: skip
def test_unsafe_replica_settings_are_refused(tmp_path: Path, values: dict[str, Any], complaint: str) -> None:
    result = helm("template", "test", str(CHART), "-f", str(write_values(tmp_path, values)))
    assert result.returncode != 0 and complaint in result.stderr


MUTATING_POLICY_API = "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy"


def test_the_finalizer_policy_is_rendered_where_the_cluster_offers_it_and_only_for_served_namespaces(
    tmp_path: Path,
) -> None:
    assert not by_kind(render(tmp_path), "MutatingAdmissionPolicy")  # an older cluster: kopf adds the finalizer
    everywhere = render(tmp_path, api_versions=(MUTATING_POLICY_API,))
    policy = one(everywhere, "MutatingAdmissionPolicy")
    assert one(everywhere, "MutatingAdmissionPolicyBinding")["spec"]["policyName"] == policy["metadata"]["name"]
    assert policy["spec"]["failurePolicy"] == "Ignore" and "matchConditions" not in policy["spec"]
    assert policy["spec"]["matchConstraints"]["resourceRules"][0]["operations"] == ["CREATE"]
    assert '["kubekms.io/finalizer"]' in policy["spec"]["mutations"][0]["applyConfiguration"]["expression"]
    assert policy["spec"] == finalizer_policy.manifests(())[0]["spec"]  # the policy the bench and tests install
    served = render(
        tmp_path, {"operator": {"watchNamespaces": ["team-a", "team-b"]}}, api_versions=(MUTATING_POLICY_API,)
    )
    (condition,) = one(served, "MutatingAdmissionPolicy")["spec"]["matchConditions"]
    assert condition["expression"] == 'request.namespace in ["team-a","team-b"]'
    off = render(
        tmp_path, {"operator": {"enabled": False}, "server": {"enabled": True}}, api_versions=(MUTATING_POLICY_API,)
    )
    assert not by_kind(off, "MutatingAdmissionPolicy")


def test_default_backend_allows_adoption_only_from_the_listed_namespaces(tmp_path: Path) -> None:
    """Without defaultBackend.adoptionNamespaces the KMSBackend names no namespace, so none may spec.adopt."""
    embedded = {"server": {"enabled": True}, "defaultBackend": {"enabled": True}}
    backend = one(render(tmp_path, embedded), "KMSBackend")
    assert "adoption" not in backend["spec"]
    embedded["defaultBackend"]["adoptionNamespaces"] = ["kube-system", "team-*"]
    backend = one(render(tmp_path, embedded, release="adopting"), "KMSBackend")
    assert backend["spec"]["adoption"] == {"namespaces": ["kube-system", "team-*"]}
