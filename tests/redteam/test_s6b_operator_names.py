"""KMSKeys whose (valid) names make no valid derived alias, applied through a real kube-apiserver.

Without ``spec.aliases`` the operator names the key ``k8s/<namespace>/<name>``. A KMSKey's name is
a DNS subdomain: it may hold dots (``payments.v2``), which the alias syntax ``[a-zA-Z0-9:/_-]``
refuses, and be up to 253 characters, so the alias may exceed 255. Such an object never got a key:
``BackendRejected`` with the backend's "invalid alias" or even "key_id must be 0 to 255 characters"
(the user gave no key id). Expected: a dotted name gets its key; a name no alias can hold is
``InvalidSpec`` naming ``spec.aliases``, before any backend call.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from kubekms.devenv.controlplane import control_plane
from kubekms.devenv.kmsserver import KMSServer, kms_server
from kubekms.devenv.processes import wait_for
from kubekms.devenv.stack import StatePaths, apply_crds, start_operator

pytestmark = pytest.mark.e2e
GROUP, VERSION = "kubekms.io", "v1alpha1"


class Namespace:
    def __init__(self, api: client.ApiClient, name: str) -> None:
        self.objects = client.CustomObjectsApi(api)
        self.name = name
        client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})

    def create_key(self, name: str, spec: dict[str, Any]) -> None:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "KMSKey", "metadata": {"name": name}, "spec": spec}
        self.objects.create_namespaced_custom_object(GROUP, VERSION, self.name, "kmskeys", body)

    def synced(self, name: str) -> dict[str, Any]:
        """The Synced condition once the operator has set one (True or False)."""

        def condition() -> dict[str, Any] | None:
            found = self.objects.get_namespaced_custom_object(GROUP, VERSION, self.name, "kmskeys", name)
            conditions = (found.get("status") or {}).get("conditions") or []
            return next((c for c in conditions if c["type"] == "Synced" and c["status"] in ("True", "False")), None)

        return wait_for(condition, 60, f"KMSKey {name} Synced set")


@pytest.fixture(scope="module")
def namespace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Namespace, str]]:
    root = tmp_path_factory.mktemp("s6b-operator")
    with control_plane() as plane, kms_server(root / "kms") as kms:
        api = config.new_client_from_config(config_file=str(plane.kubeconfig))
        apply_crds(api)
        backend = make_backend(api, kms, f"s6b-{uuid.uuid4().hex[:6]}")
        paths = StatePaths(root)
        paths.logs.mkdir()
        operator = start_operator(plane, paths)
        try:
            yield Namespace(api, backend), backend
        finally:
            operator.stop()


def make_backend(api: client.ApiClient, kms: KMSServer, name: str) -> str:
    """A namespace and a KMSBackend of the same name, its credentials Secret in that namespace."""
    client.CoreV1Api(api).create_namespace({"metadata": {"name": f"{name}-creds"}})
    credentials = yaml.safe_load(Path(kms.credentials_file("admin")).read_text())
    client.CoreV1Api(api).create_namespaced_secret(
        f"{name}-creds", {"metadata": {"name": "creds"}, "stringData": credentials}
    )
    spec = {"provider": "kubekms", "endpoint": kms.endpoint, "projectId": kms.project_id,
            "credentialsSecretRef": {"namespace": f"{name}-creds", "name": "creds"}}  # fmt: skip
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "KMSBackend", "metadata": {"name": name}, "spec": spec}
    client.CustomObjectsApi(api).create_cluster_custom_object(GROUP, VERSION, "kmsbackends", body)
    return name


@pytest.mark.xfail(strict=False, reason="h7-findings.md #3, routed to the operator's owner (spec.primary_alias)")
def test_a_dotted_name_gets_its_key(namespace: tuple[Namespace, str]) -> None:
    space, backend = namespace
    space.create_key("payments.v2", {"backendRef": {"name": backend}})
    synced = space.synced("payments.v2")
    assert synced["status"] == "True", synced


@pytest.mark.xfail(strict=False, reason="h7-findings.md #3, routed to the operator's owner (spec.primary_alias)")
def test_a_name_no_alias_can_hold_is_an_invalid_spec(namespace: tuple[Namespace, str]) -> None:
    space, backend = namespace
    space.create_key("a" * 253, {"backendRef": {"name": backend}})
    synced = space.synced("a" * 253)
    assert (synced["status"], synced["reason"]) == ("False", "InvalidSpec"), synced
    assert "spec.aliases" in synced["message"]
