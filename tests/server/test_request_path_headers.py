"""Header values: the fast printable-ASCII check accepts exactly what the rule's regular expression accepts."""

from __future__ import annotations

import re

from kubekms.wire import inputs

RULE = re.compile(r"[\x20-\x7e\t]*")  # printable ASCII and tabs


def test_every_character_alone_and_beside_others_is_judged_as_by_the_rule() -> None:
    for code in range(0x110000):
        character = chr(code)
        for value in (character, f"a{character}b", f"\t{character}"):
            assert inputs.is_printable_ascii(value) == (RULE.fullmatch(value) is not None), hex(code)


def test_values_longer_than_the_limit_are_refused() -> None:
    assert inputs.is_printable_ascii("a" * inputs.MAX_HEADER_CHARS)
    assert not inputs.is_printable_ascii("a" * (inputs.MAX_HEADER_CHARS + 1))
    assert inputs.is_printable_ascii("")
