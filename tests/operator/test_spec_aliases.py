"""Aliases under k8s/ are the namespaces': a KMSKey lists only its own namespace's (no cluster needed)."""

from __future__ import annotations

import pytest

from kubekms_operator.spec import InvalidSpec, check_convergeable, parse_key


def check(namespace: str, aliases: list[str]) -> None:
    check_convergeable(parse_key({"aliases": aliases}, namespace=namespace, name="app", uid="u", annotations={}))


@pytest.mark.parametrize(
    "alias", ["k8s/team-b/payments", "k8s/team-ab/x", "k8s/team-/x", "k8s/team", "K8S/team-b/x", "K8s/team-a/x"]
)
def test_another_namespaces_derived_alias_is_refused(alias: str) -> None:
    with pytest.raises(
        InvalidSpec,
        match=r"spec.aliases\[1\] .*belong to that namespace's KMSKeys; this one may use "
        r"k8s/team-a/\.\.\.",
    ):
        check("team-a", ["team-a/own", alias])


@pytest.mark.parametrize("alias", ["k8s/team-a/payments", "k8s/team-a/x/y", "apps/k8s/team-b/x", "k8s-team-b/x"])
def test_own_namespace_and_other_aliases_pass(alias: str) -> None:
    check("team-a", [alias])
