"""The few Kubernetes API calls the handlers make themselves, as coroutines.

kopf watches and patches its own progress; these are the reads of other objects
(KMSBackends, Secrets, a key's owner) and the status writes that must land *now*
(the key id right after create), through the official client in worker threads. The
re-encryption daemon, which runs its pass in a worker thread, uses the blocking forms.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import threading
from datetime import datetime
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from kubekms_operator.spec import BACKENDS, GROUP, KEYS, VERSION

_api_client: client.ApiClient | None = None
_api_client_lock = threading.Lock()  # the first call may come from a worker thread


class StatusNotWritten(Exception):
    """The apiserver refused a KMSKey status write (admission, conflict, outage); retry later."""


def api_client() -> client.ApiClient:
    """The official client, configured like kopf: in-cluster, else the kubeconfig."""
    global _api_client
    with _api_client_lock:
        if _api_client is None:
            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
            _api_client = client.ApiClient()
        return _api_client


async def server_time() -> datetime:
    """The apiserver's clock (the Date of an answer, whole seconds), as in the creationTimestamps it writes."""
    _, _, headers = await asyncio.to_thread(client.VersionApi(api_client()).get_code_with_http_info)
    return email.utils.parsedate_to_datetime(headers["Date"])


def _objects() -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client())


def _absent_as_none(call: Any, *args: Any) -> Any:
    try:
        return call(*args)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


async def get_backend(name: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = await asyncio.to_thread(
        _absent_as_none, _objects().get_cluster_custom_object, GROUP, VERSION, BACKENDS, name
    )
    return found


async def list_backends() -> list[dict[str, Any]]:
    answer = await asyncio.to_thread(_objects().list_cluster_custom_object, GROUP, VERSION, BACKENDS)
    items: list[dict[str, Any]] = answer.get("items") or []
    return items


async def list_keys(namespace: str) -> list[dict[str, Any]]:
    """Every KMSKey of ``namespace``; of the cluster when it is empty."""
    objects = _objects()
    if namespace:
        answer = await asyncio.to_thread(objects.list_namespaced_custom_object, GROUP, VERSION, namespace, KEYS)
    else:
        answer = await asyncio.to_thread(objects.list_cluster_custom_object, GROUP, VERSION, KEYS)
    items: list[dict[str, Any]] = answer.get("items") or []
    return items


def read_key(namespace: str, name: str) -> dict[str, Any] | None:
    """A KMSKey, or None if it does not exist (blocking: for worker threads such as the re-encryption pass)."""
    found: dict[str, Any] | None = _absent_as_none(
        _objects().get_namespaced_custom_object, GROUP, VERSION, namespace, KEYS, name
    )
    return found


async def get_key(namespace: str, name: str) -> dict[str, Any] | None:
    return await asyncio.to_thread(read_key, namespace, name)


async def read_secret(namespace: str, name: str) -> tuple[str, dict[str, bytes]] | None:
    """(resourceVersion, decoded data) of a Secret, or None if it does not exist."""
    core = client.CoreV1Api(api_client())
    secret = await asyncio.to_thread(_absent_as_none, core.read_namespaced_secret, name, namespace)
    if secret is None:
        return None
    data = {key: base64.b64decode(value) for key, value in (secret.data or {}).items()}
    return str(secret.metadata.resource_version), data


def write_key_status(namespace: str, name: str, status: dict[str, Any]) -> None:
    """Merge ``status`` into a KMSKey's status (blocking; the apiserver's refusal raised as it came)."""
    _objects().patch_namespaced_custom_object_status(GROUP, VERSION, namespace, KEYS, name, {"status": status})


async def patch_key_status(namespace: str, name: str, status: dict[str, Any]) -> None:
    try:
        await asyncio.to_thread(write_key_status, namespace, name, status)
    except ApiException as error:
        raise StatusNotWritten(
            f"the status of KMSKey {namespace}/{name} was not written: {error.status} {error.reason}"
        ) from None
