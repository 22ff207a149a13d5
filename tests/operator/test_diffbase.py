"""The KMSKey diffbase's essence is kopf's own, built without kopf's deep copy of the whole body (no cluster)."""

from __future__ import annotations

from typing import Any, cast

import kopf
import pytest

from kubekms_operator.diffbase import PREFIX, KeyStatusDiffBase, Progress

SPEC = {
    "backendRef": {"name": "one"},
    "aliases": ["a/b", "c/d"],
    "tags": {"team": "pay"},
    "policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["kms:*"], "Resource": "*"}]},
    "rotation": {"enabled": True, "periodDays": 90},
}
METADATA: list[dict[str, Any]] = [
    {},
    {"labels": {}, "annotations": {}},
    {"labels": {"app": "shop"}, "annotations": {"kubekms.io/rotate": "1"}},
    {
        "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": "{}",
            f"{PREFIX}/last-handled-configuration": "{}",  # kopf's diffbase key of this operator
            f"{PREFIX}/create_key": "{}",  # a progress annotation: left to kopf's own clear()
            "kopf.zalando.org/last-handled-configuration": "{}",  # another kopf operator's
            "other.example.com/kopf-managed": "yes",  # a marked prefix and what it marks
            "other.example.com/create": "{}",
            "kept.example.com/note": "x",
        }
    },
]


def body(metadata: dict[str, Any], kind: str = "KMSKey") -> kopf.Body:
    raw = {
        "apiVersion": "kubekms.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "k", "namespace": "n", "uid": "u", "generation": 3, "managedFields": [{}], **metadata},
        "spec": SPEC,
        "status": {"keyId": "x", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    return kopf.Body(cast(kopf.RawBody, raw))


@pytest.mark.parametrize("metadata", METADATA)
@pytest.mark.parametrize("kind", ["KMSKey", "KMSBackend"])
def test_the_essence_is_kopfs(metadata: dict[str, Any], kind: str) -> None:
    kopfs = kopf.AnnotationsDiffBaseStorage(prefix=PREFIX, key="last-handled-configuration")
    assert KeyStatusDiffBase().build(body=body(metadata, kind)) == kopfs.build(body=body(metadata, kind))


def test_the_essence_is_a_copy() -> None:
    source = body({"labels": {"app": "shop"}})
    essence: dict[str, Any] = dict(KeyStatusDiffBase().build(body=source))
    essence["spec"]["rotation"]["periodDays"] = 1
    essence["spec"]["aliases"].append("e/f")
    essence["metadata"]["labels"]["app"] = "other"
    assert source["spec"]["rotation"]["periodDays"] == 90
    assert source["spec"]["aliases"] == ["a/b", "c/d"]
    assert source["metadata"]["labels"] == {"app": "shop"}


def test_keys_formed_once_are_kopfs() -> None:
    ours, kopfs = Progress(), kopf.AnnotationsProgressStorage(prefix=PREFIX)
    long_name = "create_key/" + "x" * 80  # kopf shortens names over 63 characters with a digest
    for name in ("create_key", long_name):
        assert list(ours.make_keys(name, body=body({}))) == list(kopfs.make_keys(name, body=body({})))
        assert list(ours.make_keys(name)) == list(ours.make_keys(name, body=body({})))
