"""The alias a KMSKey without spec.aliases gets: valid for every name that can have one, distinct per object."""

from __future__ import annotations

import pytest

from kubekms.naming import is_alias
from kubekms_operator.spec import DesiredKey, InvalidSpec, check_convergeable, derived_alias, parse_key


def desired(name: str, spec: dict[str, object] | None = None) -> DesiredKey:
    return parse_key(spec or {}, namespace="team-a", name=name, uid="u", annotations={})


def test_a_dotted_name_derives_a_valid_alias_distinct_from_its_dashed_twin() -> None:
    dotted, dashed = desired("payments.v2"), desired("payments-v2")
    assert dotted.primary_alias() == "k8s/team-a/payments:v2"
    assert is_alias(dotted.primary_alias())
    assert dotted.primary_alias() != dashed.primary_alias()
    check_convergeable(dotted)  # no InvalidSpec


@pytest.mark.parametrize("name", ["a" * 253, "default"])
def test_a_name_no_alias_can_be_derived_from_asks_for_spec_aliases(name: str) -> None:
    with pytest.raises(InvalidSpec, match=r"set spec\.aliases"):
        check_convergeable(desired(name))
    check_convergeable(desired(name, {"aliases": ["given"]}))  # an alias given instead: fine


def test_derived_alias_keeps_names_without_dots_as_they_were() -> None:
    assert derived_alias("ns", "db-key") == "k8s/ns/db-key"
