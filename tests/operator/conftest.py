"""Fixtures of the operator tests: the CRDs in the session's kube-apiserver, a real kubekms server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from operator_support import Cluster, api_client

from kubekms.devenv.controlplane import ControlPlane
from kubekms.devenv.kmsserver import KMSServer, kms_server
from kubekms.devenv.stack import apply_crds


@pytest.fixture(scope="session")
def plane(control_plane: ControlPlane) -> ControlPlane:
    apply_crds(api_client(control_plane))
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
def log_dir(tmp_path: Path) -> Path:
    return tmp_path
