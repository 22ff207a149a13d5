"""The MutatingAdmissionPolicy that puts the operator's finalizer on a KMSKey as it is created.

Without it, kopf adds the finalizer itself: one more write of every new KMSKey (a patch the
apiserver validates and stores, ~3 ms of its CPU), one more watch event, and one more handling
pass before the key can be created (bench/operator_bench.py). With it, the apiserver writes the
finalizer in the creation itself, and kopf, finding it there, creates the key at once. Either
way the finalizer is stored before the key exists. kopf still adds it where the policy is
missing or failed (``failurePolicy: Ignore`` never blocks a creation), so the policy only saves
work and never decides safety.

The binding must cover exactly the namespaces the operator serves: a KMSKey elsewhere would
carry a finalizer that no operator removes, and could not be deleted. Helm installs the policy
(an admin's privilege: a mutating policy can change any object), not the operator.
"""

from __future__ import annotations

import json
import time
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from kubekms_operator.spec import GROUP, KEYS, VERSION

FINALIZER = f"{GROUP}/finalizer"
NAME = "kubekms-operator-finalizer"
API_VERSION = "admissionregistration.k8s.io/v1"
_PLURALS = {
    "MutatingAdmissionPolicy": "mutatingadmissionpolicies",
    "MutatingAdmissionPolicyBinding": "mutatingadmissionpolicybindings",
}
_NAMESPACE_NAME = set("abcdefghijklmnopqrstuvwxyz0123456789-")


class NotExpressible(ValueError):
    """A namespace pattern the policy cannot match exactly (only names and ``*``/``?`` globs)."""


def namespace_regex(pattern: str) -> str:
    """A kopf namespace glob (``team-*``, ``ns-?``) as an anchored RE2 regex for CEL's matches()."""
    parts = []
    for char in pattern:
        if char == "*":
            parts.append(".*")
        elif char == "?":
            parts.append(".")
        elif char in _NAMESPACE_NAME:
            parts.append(char)
        else:  # kopf's comma lists, negations and character classes
            raise NotExpressible(f"namespace pattern {pattern!r}: only names and * or ? globs")
    return "^" + "".join(parts) + "$"


def manifests(namespaces: tuple[str, ...]) -> list[dict[str, Any]]:
    """The policy and its binding for KMSKeys in ``namespaces`` (names or globs; empty: every namespace)."""
    spec: dict[str, Any] = {
        "matchConstraints": {
            "resourceRules": [
                {"apiGroups": [GROUP], "apiVersions": ["*"], "operations": ["CREATE"], "resources": [KEYS]}
            ]
        },
        "failurePolicy": "Ignore",
        "reinvocationPolicy": "Never",
        # finalizers is a set: the apply merges ours into any the creator wrote
        "mutations": [
            {
                "patchType": "ApplyConfiguration",
                "applyConfiguration": {
                    "expression": f"Object{{metadata: Object.metadata{{finalizers: [{json.dumps(FINALIZER)}]}}}}"
                },
            }
        ],
    }
    if namespaces:
        regexes = json.dumps([namespace_regex(pattern) for pattern in namespaces])
        spec["matchConditions"] = [
            {"name": "served-namespace", "expression": f"{regexes}.exists(p, request.namespace.matches(p))"}
        ]
    policy = {"apiVersion": API_VERSION, "kind": "MutatingAdmissionPolicy", "metadata": {"name": NAME}, "spec": spec}
    binding = {
        "apiVersion": API_VERSION,
        "kind": "MutatingAdmissionPolicyBinding",
        "metadata": {"name": NAME},
        "spec": {"policyName": NAME},
    }
    return [policy, binding]


def install(api: client.ApiClient, namespaces: tuple[str, ...], probe_namespace: str, timeout: float = 30.0) -> None:
    """Create (or replace) the policy and its binding, then wait until the apiserver applies them:
    a dry-run KMSKey in ``probe_namespace`` (which they must cover) comes back with the finalizer.
    What the chart's templates do, for the bench, tests and hand-made clusters."""
    objects = client.CustomObjectsApi(api)
    group, version = API_VERSION.split("/")
    for manifest in manifests(namespaces):
        plural = _PLURALS[manifest["kind"]]
        try:
            objects.create_cluster_custom_object(group, version, plural, manifest)
        except ApiException as error:
            if error.status != 409:
                raise
            current = objects.get_cluster_custom_object(group, version, plural, NAME)
            manifest["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            objects.replace_cluster_custom_object(group, version, plural, NAME, manifest)
    probe = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "KMSKey",
        "metadata": {"name": "finalizer-policy-probe"},
        "spec": {"backendRef": {"name": "probe"}},
    }
    deadline = time.monotonic() + timeout
    while True:
        try:
            created = objects.create_namespaced_custom_object(
                GROUP, VERSION, probe_namespace, KEYS, probe, dry_run="All"
            )
            if FINALIZER in (created["metadata"].get("finalizers") or []):
                return
        except ApiException as error:
            if error.status not in (404, 429, 503):  # a CRD just created answers these for a while
                raise
        if time.monotonic() > deadline:
            raise TimeoutError(f"the apiserver did not apply {NAME} within {timeout:.0f} s")
        time.sleep(0.2)  # polling interval of a condition with a deadline


def uninstall(api: client.ApiClient) -> None:
    objects = client.CustomObjectsApi(api)
    group, version = API_VERSION.split("/")
    for plural in reversed(_PLURALS.values()):
        try:
            objects.delete_cluster_custom_object(group, version, plural, NAME)
        except ApiException as error:
            if error.status != 404:
                raise
