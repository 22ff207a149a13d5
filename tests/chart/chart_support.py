"""Helpers of the chart tests: the pinned helm, rendered manifests, and installing them through the real API."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from kubekms.devenv.binaries import ensure_helm
from kubekms.devenv.controlplane import ControlPlane
from kubekms.devenv.processes import wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "kubekms"
CRD_DIR = REPO_ROOT / "crds"

# Server enabled with a default backend, re-encryption on: every template renders.
FULL_VALUES: dict[str, Any] = {
    "operator": {
        "watchNamespaces": [],
        "reencryption": {"enabled": True, "maxRate": 50},
        "credentialSecrets": ["kms-credentials"],
    },
    "server": {"enabled": True, "projectId": "cluster", "cmkLimit": 50, "persistence": {"size": "2Gi"}},
    "defaultBackend": {"enabled": True, "default": True},
}


def helm(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ensure_helm()), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def write_values(directory: Path, values: dict[str, Any], name: str = "values.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(values))
    return path


def render(
    tmp_path: Path,
    values: dict[str, Any] | None = None,
    *,
    release: str = "test",
    namespace: str = "kubekms",
    include_crds: bool = False,
    api_versions: tuple[str, ...] = (),
) -> list[dict[str, Any]]:
    """``helm template`` of the chart; the documents it renders (empty ones dropped).

    ``api_versions``: what the target cluster offers beyond helm's defaults (``--api-versions``).
    """
    args = ["template", release, str(CHART), "--namespace", namespace]
    for api_version in api_versions:
        args += ["--api-versions", api_version]
    if values is not None:
        args += ["-f", str(write_values(tmp_path, values, f"values-{release}.yaml"))]
    if include_crds:
        args.append("--include-crds")
    result = helm(*args)
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def by_kind(objects: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [body for body in objects if body["kind"] == kind]


def one(objects: Iterable[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, rendered {len(found)}"
    return found[0]


class ApiServer:
    """Rendered manifests through the real kube-apiserver, any kind, with the dynamic client."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.dynamic = DynamicClient(api)

    def _resource(self, body: dict[str, Any]) -> Any:
        return self.dynamic.resources.get(api_version=body["apiVersion"], kind=body["kind"])

    def create(self, body: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        resource = self._resource(body)
        namespace = body["metadata"].get("namespace") if resource.namespaced else None
        options = {"dry_run": "All"} if dry_run else {}
        created = resource.create(body=body, namespace=namespace, **options)
        return dict(created.to_dict())

    def get(self, body: dict[str, Any]) -> dict[str, Any]:
        resource = self._resource(body)
        namespace = body["metadata"].get("namespace") if resource.namespaced else None
        return dict(resource.get(name=body["metadata"]["name"], namespace=namespace).to_dict())

    def install_crds(self, crds: list[dict[str, Any]]) -> None:
        """Create the CRDs (other tests of the session may have created the same ones) and wait until served."""
        extensions = client.ApiextensionsV1Api(self.api)
        for crd in crds:
            try:
                self.create(crd)
            except ApiException as error:
                if error.status != 409:
                    raise

        def established() -> bool:
            for crd in crds:
                status = extensions.read_custom_resource_definition(crd["metadata"]["name"]).status
                if not any(c.type == "Established" and c.status == "True" for c in status.conditions or []):
                    return False
            return True

        wait_for(established, 30, "the chart's CRDs established")
        self.dynamic = DynamicClient(self.api)  # rediscover: the new kinds are served now

    def can(self, service_account: str, account_namespace: str, verb: str, /, **attributes: str) -> bool:
        """SubjectAccessReview for a ServiceAccount, as `kubectl auth can-i --as system:serviceaccount:...`."""
        if "path" in attributes:
            review = {"nonResourceAttributes": {"verb": verb, "path": attributes["path"]}}
        else:
            review = {"resourceAttributes": {"verb": verb, **attributes}}
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": f"system:serviceaccount:{account_namespace}:{service_account}",
                "groups": [
                    "system:serviceaccounts",
                    f"system:serviceaccounts:{account_namespace}",
                    "system:authenticated",
                ],
                **review,
            },
        }
        answer = client.AuthorizationV1Api(self.api).create_subject_access_review(body)
        return bool(answer.status.allowed)


def service_account_kubeconfig(plane: ControlPlane, namespace: str, account: str, path: Path) -> Path:
    """The admin kubeconfig's cluster, with a bound token of the ServiceAccount as the only user."""
    admin = yaml.safe_load(plane.kubeconfig.read_text())
    api = config.new_client_from_config(config_file=str(plane.kubeconfig))
    token = client.CoreV1Api(api).create_namespaced_service_account_token(
        account, namespace, {"spec": {"expirationSeconds": 3600}}
    )
    kubeconfig = {
        **admin,
        "users": [{"name": account, "user": {"token": token.status.token}}],
        "contexts": [{"name": "operator", "context": {"cluster": admin["clusters"][0]["name"], "user": account}}],
        "current-context": "operator",
    }
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump(kubeconfig))
    return path
