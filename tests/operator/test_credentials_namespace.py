"""With --credentials-namespace, a KMSBackend naming a Secret in another namespace gets nothing read
(whoever may write a KMSBackend would otherwise have that Secret sent to its endpoint as a credential)."""

from __future__ import annotations

from typing import Any

import pytest

from kubekms_operator.backends import BackendResolver, DependencyNotReady


def backend(credentials_namespace: str, ca_namespace: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "provider": "kubekms",
        "endpoint": "http://127.0.0.1:9",
        "credentialsSecretRef": {"namespace": credentials_namespace, "name": "any"},
    }
    if ca_namespace is not None:
        spec["caSecretRef"] = {"namespace": ca_namespace, "name": "ca"}
    return {"metadata": {"name": "planted", "uid": "u1", "generation": 1}, "spec": spec}


@pytest.mark.parametrize(
    ("obj", "named"),
    [(backend("kube-system"), "credentials Secret kube-system/any"), (backend("kms", "kube-system"), "CA Secret")],
)
async def test_a_secret_outside_the_namespace_is_never_read(obj: dict[str, Any], named: str) -> None:
    # No kube client is configured in this process: any read would fail otherwise than with this refusal.
    resolver = BackendResolver(credentials_namespace="kms")
    with pytest.raises(
        DependencyNotReady, match=f"KMSBackend planted: {named}.* is not read: .* only in namespace kms"
    ):
        async with resolver.lease(obj):
            pass
