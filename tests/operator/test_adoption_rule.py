"""Which namespaces a KMSBackend lets adopt its keys: spec.adoption.namespaces, globs, none by default."""

from __future__ import annotations

from typing import Any

import pytest

from kubekms_operator.backends import DependencyNotReady, ResolvedBackend
from kubekms_operator.spec import InvalidSpec, parse_backend

SPEC: dict[str, Any] = {"provider": "kubekms", "credentialsSecretRef": {"namespace": "ops", "name": "kms"}}


def resolved(adoption: dict[str, Any] | None) -> ResolvedBackend:
    spec = parse_backend({**SPEC, **({"adoption": adoption} if adoption is not None else {})})
    return ResolvedBackend("node", None, spec.adoption_namespaces)  # type: ignore[arg-type]  # never called


@pytest.mark.parametrize(
    ("adoption", "namespace"),
    [
        (None, "ops"),
        ({}, "ops"),
        ({"namespaces": []}, "ops"),
        ({"namespaces": ["team-*"]}, "ops"),
        ({"namespaces": ["ops"]}, "ops2"),
        ({"namespaces": ["ops"]}, "OPS"),
    ],
)
def test_refused(adoption: dict[str, Any] | None, namespace: str) -> None:
    with pytest.raises(
        DependencyNotReady, match=f"KMSBackend node does not let KMSKeys of namespace {namespace} "
    ) as no:
        resolved(adoption).check_adoption(namespace)
    assert no.value.reason == "AdoptionNotAllowed"


@pytest.mark.parametrize(("pattern", "namespace"), [("ops", "ops"), ("team-*", "team-a"), ("*", "anything")])
def test_allowed(pattern: str, namespace: str) -> None:
    resolved({"namespaces": ["other", pattern]}).check_adoption(namespace)


@pytest.mark.parametrize("adoption", [[], {"namespaces": "ops"}, {"namespaces": [""]}, {"namespaces": [3]}])
def test_malformed(adoption: Any) -> None:
    with pytest.raises(InvalidSpec, match=r"spec\.adoption"):
        parse_backend({**SPEC, "adoption": adoption})
