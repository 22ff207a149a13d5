"""The default KMSBackend of a KMSKey without backendRef is chosen from the apiserver, not from kopf's watch.

The operator's resolver is fed (``seen``) what a lagging watch had delivered, while the real
kube-apiserver already holds the newer KMSBackends; the choice must follow the apiserver. No
operator process and no KMS server: the chosen backend is only opened, never called.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from operator_support import GROUP, VERSION, Cluster

from kubekms_operator.backends import BackendResolver, DependencyNotReady

pytestmark = pytest.mark.usefixtures("operator_kube_client")  # the operator's own client, on this plane
NAMESPACE_PREFIX = "dflt-"


def make_backend(cluster: Cluster, default: bool) -> dict[str, Any]:
    name = f"dflt-{uuid.uuid4().hex[:8]}"
    cluster.core.create_namespaced_secret(
        cluster.namespace, {"metadata": {"name": name}, "stringData": {"access_key": "ak", "secret_key": "sk"}}
    )
    spec = {
        "provider": "kubekms",
        "endpoint": "http://127.0.0.1:9",  # never called: the backend is only opened
        "projectId": "default",
        "credentialsSecretRef": {"namespace": cluster.namespace, "name": name},
        "default": default,
    }
    created: dict[str, Any] = cluster.objects.create_cluster_custom_object(
        GROUP,
        VERSION,
        "kmsbackends",
        {"apiVersion": f"{GROUP}/{VERSION}", "kind": "KMSBackend", "metadata": {"name": name}, "spec": spec},
    )
    return created


def delete_backends(cluster: Cluster, *objects: dict[str, Any]) -> None:
    for obj in objects:
        cluster.objects.delete_cluster_custom_object(GROUP, VERSION, "kmsbackends", obj["metadata"]["name"])


async def test_two_defaults_refuse_a_key_even_when_the_watch_showed_one(cluster: Cluster) -> None:
    first = make_backend(cluster, default=True)
    second = make_backend(cluster, default=True)
    resolver = BackendResolver()
    resolver.seen(first, deleted=False)  # the watch has not delivered the second one yet
    try:
        with pytest.raises(DependencyNotReady, match="more than one default KMSBackend") as refused:
            async with resolver.using(None):
                pass
        assert second["metadata"]["name"] in str(refused.value)
    finally:
        await resolver.close()
        delete_backends(cluster, first, second)


async def test_a_moved_default_places_a_new_key_in_the_new_one(cluster: Cluster) -> None:
    old = make_backend(cluster, default=True)
    resolver = BackendResolver()
    resolver.seen(old, deleted=False)  # what the watch delivered before the default moved
    new = make_backend(cluster, default=True)
    cluster.objects.patch_cluster_custom_object(
        GROUP, VERSION, "kmsbackends", old["metadata"]["name"], {"spec": {"default": False}}
    )
    try:
        async with resolver.using(None) as resolved:
            assert resolved.name == new["metadata"]["name"]
    finally:
        await resolver.close()
        delete_backends(cluster, old, new)
