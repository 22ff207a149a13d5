"""A rotation on demand happens once per ``kubekms.io/rotate`` value, even when every status write
after it is refused for a while and the operator restarts in between (issue 12).

The refusal is real: a ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1) denying
UPDATE of ``kmskeys/status`` in the test's namespace, deleted again later. The operators are
real subprocesses serving only this namespace; the key's versions are read from the server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from operator_support import GROUP, VERSION, Cluster, start_operator

from kubekms.devenv.controlplane import ControlPlane
from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import wait_for

pytestmark = pytest.mark.e2e
NAMESPACE_PREFIX = "ro-"


@contextmanager
def status_writes_refused(cluster: Cluster) -> Iterator[None]:
    """Deny every KMSKey status write in the cluster's namespace until the block ends."""
    admission = client.AdmissionregistrationV1Api(cluster.api)
    name = f"refuse-status-{cluster.namespace}"
    admission.create_validating_admission_policy(
        {
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [GROUP],
                            "apiVersions": [VERSION],
                            "operations": ["UPDATE"],
                            "resources": ["kmskeys/status"],
                        }
                    ]
                },
                "validations": [{"expression": "false", "message": "KMSKey status writes are refused for a while"}],
            },
        }
    )
    admission.create_validating_admission_policy_binding(
        {
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": cluster.namespace}}
                },
            },
        }
    )
    try:
        yield
    finally:
        admission.delete_validating_admission_policy_binding(name)
        admission.delete_validating_admission_policy(name)


def status_write_refused(cluster: Cluster, name: str) -> bool:
    """A no-op status write of the test's own: does admission refuse it yet?"""
    backend = cluster.status(name).get("backend")
    try:
        cluster.objects.patch_namespaced_custom_object_status(
            GROUP, VERSION, cluster.namespace, "kmskeys", name, {"status": {"backend": backend}}
        )
    except ApiException as error:
        return error.status in (403, 422) and "refused for a while" in str(error.body)
    return False


def events(cluster: Cluster, name: str, reason: str) -> int:
    return sum(1 for event in cluster.events(name) if event.reason == reason)


def refusals(cluster: Cluster, name: str) -> int:
    return events(cluster, name, "StatusNotWritten")


def test_one_rotation_per_value_across_refused_status_writes_and_a_restart(
    plane: ControlPlane, kms: KMSServer, cluster: Cluster, tmp_path: Path
) -> None:
    backend = cluster.backend(kms, cluster.namespace)
    operators = [start_operator(plane, tmp_path, [cluster.namespace])]
    try:
        cluster.create_key("rot", {"backendRef": {"name": backend}})
        key_id = cluster.wait_ready("rot")["keyId"]
        assert kms.call("describe_key", key_id).current_version == 1
        with status_writes_refused(cluster):
            wait_for(lambda: status_write_refused(cluster, "rot"), 30, "the admission policy to refuse status writes")
            cluster.patch_key("rot", {"metadata": {"annotations": {"kubekms.io/rotate": "r1"}}})
            wait_for(lambda: kms.call("describe_key", key_id).current_version == 2, 30, "the rotation")
            # The backend rotated though no status can say so: an Event does.
            wait_for(lambda: events(cluster, "rot", "Rotated") == 1, 30, "a Rotated Event while status is refused")
            wait_for(lambda: refusals(cluster, "rot") >= 2, 60, "a retry refused too")  # retries come after 5 s
            operators[0].stop()
            before_restart = refusals(cluster, "rot")
            operators.append(start_operator(plane, tmp_path, [cluster.namespace]))
            wait_for(lambda: refusals(cluster, "rot") > before_restart, 60, "the new operator's write refused")
            assert "lastRotateRequest" not in cluster.status("rot")
        status = wait_for(
            lambda: (s := cluster.status("rot")).get("lastRotateRequest") == "r1" and s, 60, "r1 in status"
        )
        cluster.wait_ready("rot")
    finally:
        for process in operators:
            process.stop()
    assert status["currentVersion"] == 2
    key = kms.call("describe_key", key_id)
    assert key.current_version == 2, "rotated once for r1, not once per attempt"
    assert key.tags["kubekms.io/rotate-request"].endswith("-v1")
    assert events(cluster, "rot", "Rotated") == 1, "one Event for the one rotation, none for the retries"
