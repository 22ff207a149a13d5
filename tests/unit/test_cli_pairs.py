"""KEY=VALUE options: one parser for --tag and --context."""

import click
import pytest

from kubekms.cli.pairs import key_value_pairs


def test_pairs_keep_empty_values_and_equals_signs_in_values() -> None:
    assert key_value_pairs(["a=x=y", "b="], "--tag") == {"a": "x=y", "b": ""}


@pytest.mark.parametrize("value", ["novalue", "=1", ""])
def test_a_pair_without_a_key_or_separator_is_refused_naming_the_option(value: str) -> None:
    with pytest.raises(click.BadParameter) as refused:
        key_value_pairs([value], "--context")
    assert refused.value.param_hint == "--context"
    assert "is not KEY=VALUE" in refused.value.format_message()
