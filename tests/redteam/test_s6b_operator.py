"""The operator through a real kube-apiserver: hostile but valid KMSKeys, and a KMSKey whose backend moves.

Names. Without ``spec.aliases`` the operator names the key ``k8s/<namespace>/<name>``. A KMSKey's name is
a DNS subdomain: it may hold dots (``payments.v2``), which the alias syntax ``[a-zA-Z0-9:/_-]``
refuses, and be up to 253 characters, so the alias may exceed 255. Such an object never got a key:
``BackendRejected`` with the backend's "invalid alias" or even "key_id must be 0 to 255 characters"
(the user gave no key id). Expected: a dotted name gets its key; a name no alias can hold is
``InvalidSpec`` naming ``spec.aliases``, before any backend call.

The default KMSBackend. A KMSKey without ``backendRef`` gets its key in the default KMSBackend,
recorded in ``status.backend``. When the default later changes (a migration to a new backend),
the operator looked the key up in the *new* default: a false ``KeyGone``, and deleting the KMSKey
(deletionPolicy Delete) left the real key enabled in the old backend, its deletion never scheduled.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from kubekms.backend import KeyState
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


@dataclass(frozen=True)
class Setup:
    api: client.ApiClient
    kms: KMSServer
    other_kms: KMSServer  # a second, empty server: the backend a migration moves to


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("s6b-operator")
    with control_plane() as plane, kms_server(root / "kms") as kms, kms_server(root / "other") as other:
        api = config.new_client_from_config(config_file=str(plane.kubeconfig))
        apply_crds(api)
        paths = StatePaths(root)
        paths.logs.mkdir()
        operator = start_operator(plane, paths)
        try:
            yield Setup(api, kms, other)
        finally:
            operator.stop()


@pytest.fixture
def namespace(setup: Setup) -> tuple[Namespace, str]:
    backend = make_backend(setup.api, setup.kms, f"s6b-{uuid.uuid4().hex[:6]}")
    return Namespace(setup.api, backend), backend


def make_backend(api: client.ApiClient, kms: KMSServer, name: str, *, default: bool = False) -> str:
    """A namespace and a KMSBackend of the same name, its credentials Secret in that namespace."""
    client.CoreV1Api(api).create_namespace({"metadata": {"name": f"{name}-creds"}})
    credentials = yaml.safe_load(Path(kms.credentials_file("admin")).read_text())
    client.CoreV1Api(api).create_namespaced_secret(
        f"{name}-creds", {"metadata": {"name": "creds"}, "stringData": credentials}
    )
    spec = {"provider": "kubekms", "endpoint": kms.endpoint, "projectId": kms.project_id, "default": default,
            "credentialsSecretRef": {"namespace": f"{name}-creds", "name": "creds"}}  # fmt: skip
    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "KMSBackend", "metadata": {"name": name}, "spec": spec}
    client.CustomObjectsApi(api).create_cluster_custom_object(GROUP, VERSION, "kmsbackends", body)
    return name


def test_a_dotted_name_gets_its_key(namespace: tuple[Namespace, str]) -> None:
    space, backend = namespace
    space.create_key("payments.v2", {"backendRef": {"name": backend}})
    synced = space.synced("payments.v2")
    assert synced["status"] == "True", synced


def test_a_name_no_alias_can_hold_is_an_invalid_spec(namespace: tuple[Namespace, str]) -> None:
    space, backend = namespace
    space.create_key("a" * 253, {"backendRef": {"name": backend}})
    synced = space.synced("a" * 253)
    assert (synced["status"], synced["reason"]) == ("False", "InvalidSpec"), synced
    assert "spec.aliases" in synced["message"]


def backend_ready(api: client.ApiClient, name: str) -> bool:
    """The operator's health check has written the KMSBackend's Ready condition: it has seen the object."""
    found = client.CustomObjectsApi(api).get_cluster_custom_object(GROUP, VERSION, "kmsbackends", name)
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in (found.get("status") or {}).get("conditions") or []
    )


def test_a_key_stays_with_the_backend_it_was_made_in_when_the_default_changes(setup: Setup) -> None:
    objects = client.CustomObjectsApi(setup.api)
    first = make_backend(setup.api, setup.kms, f"s6b-old-{uuid.uuid4().hex[:6]}", default=True)
    space = Namespace(setup.api, first)
    space.create_key("migrating", {})  # no backendRef: the default one
    synced = space.synced("migrating")
    assert synced["status"] == "True", synced
    status = objects.get_namespaced_custom_object(GROUP, VERSION, space.name, "kmskeys", "migrating")["status"]
    assert status["backend"] == first
    # the migration: the old backend is no longer the default, a new one is
    objects.patch_cluster_custom_object(GROUP, VERSION, "kmsbackends", first, {"spec": {"default": False}})
    second = make_backend(setup.api, setup.other_kms, f"s6b-new-{uuid.uuid4().hex[:6]}", default=True)
    wait_for(lambda: backend_ready(setup.api, second), 60, f"KMSBackend {second} seen by the operator")
    objects.delete_namespaced_custom_object(GROUP, VERSION, space.name, "kmskeys", "migrating")

    def gone() -> bool:
        return not any(
            item["metadata"]["name"] == "migrating"
            for item in objects.list_namespaced_custom_object(GROUP, VERSION, space.name, "kmskeys")["items"]
        )

    wait_for(gone, 60, "KMSKey migrating deleted")
    key = setup.kms.call("describe_key", status["keyId"])
    assert key.state is KeyState.PENDING_DELETION, "deletionPolicy Delete was not applied to the key in its backend"
