"""A tenant's KMSKey makes the operator rewrite every Secret of the cluster and report on them.

The re-encryption daemon runs for every KMSKey with ``spec.clusterEncryption.enabled`` in any served
namespace, and reads the key it finishes from that object's ``status.keyId`` and
``status.currentVersion`` as they stand. A user who may write ``kmskeys/status`` in its own namespace
points them at the cluster key's id and current version and clears ``status.reencryption``: the
operator, with its cluster-wide Secret rights, rewrites every Secret in every namespace and records in
that user's status how many there are and the ``namespace/name`` of the last one of each page (Secret
names of other namespaces). Clearing ``status.reencryption`` again starts another full pass: etcd writes
at will. Expected: a KMSKey's status never steers the pass to a key that is not that object's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from kubekms.devenv.processes import wait_for
from kubekms.devenv.stack import read_key_status, running_stack

pytestmark = pytest.mark.e2e
GROUP, VERSION = "kubekms.io", "v1alpha1"
TENANT, OTHER = "s7k-tenant", "zz-payroll"  # OTHER sorts last: the page's last Secret is one of its own
CHECKS = 20.0  # the stack's operator looks every 5 s (KUBEKMS_REENCRYPTION_INTERVAL): four looks


def test_a_tenant_status_cannot_steer_the_reencryption_pass(tmp_path: Path) -> None:
    with running_stack(tmp_path / "state") as stack:
        core, objects = client.CoreV1Api(stack.api), client.CustomObjectsApi(stack.api)
        for namespace in (TENANT, OTHER):
            core.create_namespace({"metadata": {"name": namespace}})
        core.create_namespaced_secret(OTHER, {"metadata": {"name": "db-password"}, "stringData": {"p": "x"}})
        # after the restart that switched encryption on, the CRDs may answer 503 for a moment
        cluster = wait_for(lambda: read_key_status(stack.api), 60, "the cluster key's status")
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "KMSKey", "metadata": {"name": "mine"},
                "spec": {"clusterEncryption": {"enabled": True}}}  # fmt: skip
        wait_for(lambda: objects.create_namespaced_custom_object(GROUP, VERSION, TENANT, "kmskeys", body), 60, "create")

        def status() -> dict[str, Any]:
            found = objects.get_namespaced_custom_object(GROUP, VERSION, TENANT, "kmskeys", "mine")
            return found.get("status") or {}

        def handled() -> bool:  # Ready, or refused (a fix may refuse clusterEncryption outside its namespace)
            return any(c.get("type") == "Synced" and c.get("status") in ("True", "False")
                       for c in status().get("conditions") or [])  # fmt: skip

        wait_for(handled, 60, "the operator's answer to the tenant's KMSKey")
        steer = {"keyId": cluster["keyId"], "currentVersion": cluster["currentVersion"], "reencryption": None}
        objects.patch_namespaced_custom_object_status(GROUP, VERSION, TENANT, "kmskeys", "mine", {"status": steer})

        def rewritten_for_the_tenant() -> dict[str, Any] | None:
            progress: dict[str, Any] = status().get("reencryption") or {}
            return progress if progress.get("done") else None

        # A negative with a deadline: what the pass would write within the daemon's next looks.
        with pytest.raises(TimeoutError):
            leaked = wait_for(rewritten_for_the_tenant, CHECKS, "a pass steered by the tenant's status")
            pytest.fail(f"the tenant's status steered a pass over every Secret: {leaked}")
