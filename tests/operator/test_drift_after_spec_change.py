"""A drift check whose read of the KMSKey predates a spec change must not undo it.

The drift loop reads a KMSKey before it takes the object's lock; a change handler may take the lock
first and apply a new spec (here ``enabled: false``). The handlers run in this process (no kopf
around them) against the real kube-apiserver and a real kubekms server; the drift check is handed
the body read before the change, which is exactly what the loop hands it when the change lands in
that window: the test makes the window certain instead of waiting for it.
"""

from __future__ import annotations

import logging
from typing import Any, cast

import kopf
import pytest
from kopf._core.engines.posting import settings_var  # kopf's handler context, here only to silence Events
from operator_support import Cluster

from kubekms.devenv.kmsserver import KMSServer
from kubekms_operator.backends import BackendResolver
from kubekms_operator.handlers import KeyHandlers

pytestmark = pytest.mark.usefixtures("operator_kube_client")  # the operator's own client, on this plane
NAMESPACE_PREFIX = "dsc-"


def body(raw: dict[str, Any] | None) -> kopf.Body:
    assert raw is not None
    return kopf.Body(cast(kopf.RawBody, raw))


async def test_a_stale_drift_read_does_not_undo_a_disable(cluster: Cluster, kms: KMSServer) -> None:
    settings = kopf.OperatorSettings()
    settings.posting.enabled = False
    settings.posting.level = logging.CRITICAL + 1  # Warnings (DriftCorrected) not posted either: no kopf here
    settings_var.set(settings)
    backend = cluster.backend(kms, f"{NAMESPACE_PREFIX}{cluster.namespace[-8:]}")
    cluster.create_key("k", {"backendRef": {"name": backend}, "enabled": True})
    resolver = BackendResolver()
    handlers = KeyHandlers(resolver)
    try:
        await handlers.reconcile("create", body(cluster.key("k")), retry=0)
        stale = cluster.key("k")  # what the drift loop read, Synced at generation 1
        assert stale is not None and stale["status"]["keyState"] == "Enabled"

        cluster.patch_key("k", {"spec": {"enabled": False}})
        await handlers.reconcile("update", body(cluster.key("k")), retry=0)
        assert cluster.status("k")["keyState"] == "Disabled"

        await handlers.check_drift(stale)

        async with resolver.using(backend) as resolved:
            key = await resolved.backend.describe_key(stale["status"]["keyId"])
        assert key.state.name == "DISABLED", "the drift check reconciled the body read before the change"
        assert cluster.condition("k", "Synced")["observedGeneration"] == 2
        assert cluster.status("k")["observedGeneration"] == 2
    finally:
        handlers.drift.stop()
        await resolver.close()
        cluster.delete_key("k")
