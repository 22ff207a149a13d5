"""Shared fixtures: the real control plane (etcd + kube-apiserver built from source)."""

from __future__ import annotations

import contextlib
import os

# Tests start servers with fork+exec while gRPC client channels live in this process;
# gRPC's fork handlers then abort the child between fork and exec ("epoll_wait error").
# Must be set before anything imports grpc.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
from collections.abc import Callable, Iterator

import pytest

from kubekms.devenv import controlplane


@pytest.fixture(scope="session")
def control_plane() -> Iterator[controlplane.ControlPlane]:
    """One plain control plane shared by the session; isolate tests by namespace."""
    with controlplane.control_plane() as plane:
        yield plane


@pytest.fixture
def control_plane_factory() -> Iterator[Callable[..., controlplane.ControlPlane]]:
    """Start extra control planes (e.g. with an EncryptionConfiguration); all stopped at test end."""
    with contextlib.ExitStack() as stack:

        def start(*, encryption_config: str | None = None) -> controlplane.ControlPlane:
            return stack.enter_context(controlplane.control_plane(encryption_config=encryption_config))

        yield start
