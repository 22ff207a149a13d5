"""Invalid objects are refused by kube-apiserver itself (schema and CEL rules of crds/), with a clear message."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from operator_support import GROUP, VERSION, Cluster

pytestmark = pytest.mark.e2e
NAMESPACE_PREFIX = "va-"


def refusal(call: Any, *args: Any) -> str:
    with pytest.raises(ApiException) as refused:
        call(*args)
    assert refused.value.status == 422
    message: str = json.loads(refused.value.body)["message"]
    return message


def test_a_pending_window_of_3_days_is_refused(cluster: Cluster) -> None:
    message = refusal(cluster.create_key, "short", {"pendingWindowDays": 3})
    assert "spec.pendingWindowDays" in message and "greater than or equal to 7" in message
    assert cluster.key("short") is None


def test_immutable_fields_cannot_change(cluster: Cluster) -> None:
    cluster.create_key("fixed", {"backendRef": {"name": "one"}})
    assert cluster.key("fixed")["spec"]["keySpec"] == "AES_256"  # the schema's default
    assert "spec.keySpec" in refusal(cluster.patch_key, "fixed", {"spec": {"keySpec": "AES_128"}})
    assert "backendRef is immutable" in refusal(cluster.patch_key, "fixed", {"spec": {"backendRef": {"name": "two"}}})
    assert "adopt cannot be added" in refusal(
        cluster.patch_key, "fixed", {"spec": {"adopt": {"alias": "someone/else"}}}
    )
    assert cluster.key("fixed")["spec"]["backendRef"] == {"name": "one"}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"adopt": {"keyId": "not-a-uuid"}}, "spec.adopt.keyId"),
        ({"adopt": {}}, "adopt needs exactly one of keyId and alias"),
        ({"tags": {"kubekms.io/owner": "me"}}, "must not start with kubekms.io/"),
        ({"aliases": ["a/default"]}, "aliases ending in /default are reserved"),
        ({"aliases": ["mine", "aws/ebs"]}, "aliases under aws/ (AWS managed keys) and gcp/"),
        ({"aliases": ["AWS/ebs"]}, "aliases under aws/ (AWS managed keys) and gcp/"),
        ({"aliases": ["Gcp/global/ring/key/1"]}, "aliases under aws/ (AWS managed keys) and gcp/"),
        ({"rotation": {"enabled": True, "periodDays": 7}}, "spec.rotation.periodDays"),
        ({"deletionPolicy": "Destroy"}, "spec.deletionPolicy"),
    ],
)
def test_bad_keys_are_refused(cluster: Cluster, spec: dict[str, Any], expected: str) -> None:
    assert expected in refusal(cluster.create_key, "bad", spec)


def test_a_backend_without_endpoint_is_refused(cluster: Cluster) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "KMSBackend",
        "metadata": {"name": f"{cluster.namespace}-noendpoint"},
        "spec": {"provider": "kubekms", "credentialsSecretRef": {"namespace": "x", "name": "y"}},
    }
    message = refusal(cluster.objects.create_cluster_custom_object, GROUP, VERSION, "kmsbackends", body)
    assert "endpoint is required" in message


def gcp_backend(cluster: Cluster, suffix: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "KMSBackend",
        "metadata": {"name": f"{cluster.namespace}-{suffix}"},
        "spec": {"provider": "gcp", **spec},
    }


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"keyRing": "ring"}, "projectId is required for provider gcp"),
        ({"projectId": "my-project"}, "keyRing is required for provider gcp"),
        ({"projectId": "my-project", "keyRing": "ring", "region": "eu-west-1"}, "provider gcp takes location"),
        ({"projectId": "my-project", "keyRing": "a/b"}, "spec.keyRing"),
        (
            {"projectId": "my-project", "keyRing": "ring", "endpoint": "https://kms.example:443/v1"},
            "endpoint for provider gcp is https://host:port",
        ),
    ],
)
def test_bad_gcp_backends_are_refused(cluster: Cluster, spec: dict[str, Any], expected: str) -> None:
    body = gcp_backend(cluster, "bad", spec)
    assert expected in refusal(cluster.objects.create_cluster_custom_object, GROUP, VERSION, "kmsbackends", body)


def test_gcp_fields_belong_to_gcp_and_a_gcp_backend_needs_no_secret(cluster: Cluster) -> None:
    aws = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "KMSBackend", "metadata": {"name": f"{cluster.namespace}-aws"},
           "spec": {"provider": "aws", "keyRing": "ring"}}  # fmt: skip
    message = refusal(cluster.objects.create_cluster_custom_object, GROUP, VERSION, "kmsbackends", aws)
    assert "keyRing and location are for provider gcp only" in message
    # workload identity: no endpoint, no credentialsSecretRef
    body = gcp_backend(cluster, "adc", {"projectId": "my-project", "location": "europe-west1", "keyRing": "ring"})
    created = cluster.objects.create_cluster_custom_object(GROUP, VERSION, "kmsbackends", body)
    try:
        assert created["spec"]["location"] == "europe-west1" and "credentialsSecretRef" not in created["spec"]
    finally:
        cluster.objects.delete_cluster_custom_object(GROUP, VERSION, "kmsbackends", body["metadata"]["name"])


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"keySpec": "RSA_1024"}, "spec.keySpec"),
        ({"keySpec": "HMAC_256"}, "HMAC keys need keyUsage GENERATE_VERIFY_MAC"),
        ({"keySpec": "ECC_NIST_P256", "keyUsage": "ENCRYPT_DECRYPT"}, "ECC keys need keyUsage SIGN_VERIFY"),
        ({"keySpec": "RSA_2048", "keyUsage": "GENERATE_VERIFY_MAC"}, "RSA keys need keyUsage ENCRYPT_DECRYPT or"),
        ({"keyUsage": "SIGN_VERIFY"}, "keySpec AES_256 needs keyUsage ENCRYPT_DECRYPT"),
        (
            {"keySpec": "RSA_3072", "keyUsage": "SIGN_VERIFY", "rotation": {"enabled": True}},
            "automatic rotation is for AES_256 keys only",
        ),
        (
            {"keySpec": "ECC_SECG_P256K1", "keyUsage": "SIGN_VERIFY", "clusterEncryption": {"enabled": True}},
            "clusterEncryption needs an AES_256 key",
        ),
        ({"policy": "{}"}, "spec.policy"),
        ({"policy": {"Version": "2012-10-17"}}, "spec.policy.Statement"),
        ({"policy": {"Version": "2012-10-18", "Statement": []}}, "spec.policy.Version"),
    ],
)
def test_bad_key_types_and_policies_are_refused(cluster: Cluster, spec: dict[str, Any], expected: str) -> None:
    assert expected in refusal(cluster.create_key, "bad", spec)


def test_key_types_are_accepted_and_immutable(cluster: Cluster) -> None:
    cluster.create_key("mac", {"keySpec": "HMAC_512", "keyUsage": "GENERATE_VERIFY_MAC"})
    policy = {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Principal": "*", "Action": "kms:*"}}
    cluster.create_key("signer", {"keySpec": "ECC_NIST_P384", "keyUsage": "SIGN_VERIFY", "policy": policy})
    assert cluster.key("signer")["spec"]["policy"] == policy  # kept as written (unknown fields preserved)
    assert "keySpec is immutable" in refusal(cluster.patch_key, "mac", {"spec": {"keySpec": "HMAC_256"}})
    message = refusal(cluster.patch_key, "signer", {"spec": {"keyUsage": "ENCRYPT_DECRYPT"}})
    assert "keyUsage is immutable" in message


def test_aliases_only_naming_aws_or_gcp_elsewhere_pass(cluster: Cluster) -> None:
    aliases = ["team/aws/x", "awsome", "gcpx/y", "apps/gcp/"]
    cluster.create_key("named", {"aliases": aliases})
    assert cluster.key("named")["spec"]["aliases"] == aliases
