"""Fixtures of the operator tests: the CRDs in the session's kube-apiserver, a real kubekms server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from operator_support import GROUP, VERSION, Cluster, api_client

from kubekms.devenv.controlplane import ControlPlane, control_plane
from kubekms.devenv.kmsserver import KMSServer, kms_server
from kubekms.devenv.processes import wait_for
from kubekms.devenv.stack import apply_crds
from kubekms_operator import kube

_PLANES: list[ControlPlane] = []  # the session's plane, once a test asked for it


@pytest.fixture(scope="session")
def plane() -> Iterator[ControlPlane]:
    """A control plane of the operator tests' own: cluster-scoped objects other tests leave in the
    shared one (e.g. the chart's default KMSBackend) would change which backend is the default."""
    with control_plane() as own:
        _PLANES.append(own)
        yield _with_crds(own)
        _PLANES.clear()


@pytest.fixture(scope="module", autouse=True)
def no_kmsbackends_left_behind() -> Iterator[None]:
    """After each module, its KMSBackends go: their servers stopped with the module, and every later
    module's operator would health-check each dead one every 2 s (and a leftover default one would
    change which backend is the default)."""
    yield
    for plane in _PLANES:
        objects = client.CustomObjectsApi(api_client(plane))
        for backend in objects.list_cluster_custom_object(GROUP, VERSION, "kmsbackends")["items"]:
            objects.delete_cluster_custom_object(GROUP, VERSION, "kmsbackends", backend["metadata"]["name"])


def _with_crds(control_plane: ControlPlane) -> ControlPlane:
    api = api_client(control_plane)
    apply_crds(api)
    # A CRD just established may still answer 429 "storage is (re)initializing"; kopf would
    # then back off its watch for up to a minute, so wait until both kinds can be listed.
    objects = client.CustomObjectsApi(api)
    for plural in ("kmskeys", "kmsbackends"):
        wait_for(lambda p=plural: objects.list_cluster_custom_object(GROUP, VERSION, p) is not None, 60, f"{plural}")
    return control_plane


@pytest.fixture(scope="module")
def kms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("kms")) as server:
        yield server


@pytest.fixture
def cluster(plane: ControlPlane, request: pytest.FixtureRequest) -> Cluster:
    """A fresh namespace named with the test module's NAMESPACE_PREFIX (its operator serves that pattern)."""
    return Cluster(plane, f"{request.module.NAMESPACE_PREFIX}{uuid.uuid4().hex[:8]}")


@pytest.fixture
def operator_kube_client(plane: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The operator's own Kubernetes client (kubekms_operator.kube), pointed at the session's plane, for tests
    that run the operator's code in their own process."""
    client = api_client(plane)
    monkeypatch.setattr(kube, "_api_client", client)
    yield
    client.close()


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path
