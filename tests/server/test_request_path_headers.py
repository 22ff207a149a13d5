"""Header values: the fast printable-ASCII check accepts exactly what the rule's regular expression accepts."""

from __future__ import annotations

import re

from kubekms.errors import InvalidArgument
from kubekms.wire import inputs

RULE = re.compile(r"[\x20-\x7e\t]*")  # printable ASCII and tabs
# every character of ASCII and the blocks after it, the lone surrogates, and a sample of the rest
CODES = [*range(0x800), *range(0xD7F0, 0xE010), *range(0x800, 0x110000, 97)]


def test_every_character_alone_and_beside_others_is_judged_as_by_the_rule() -> None:
    for code in CODES:
        character = chr(code)
        for value in (character, f"a{character}b", f"\t{character}"):
            assert inputs.is_printable_ascii(value) == (RULE.fullmatch(value) is not None), hex(code)


def test_values_longer_than_the_limit_are_refused() -> None:
    assert inputs.is_printable_ascii("a" * inputs.MAX_HEADER_CHARS)
    assert not inputs.is_printable_ascii("a" * (inputs.MAX_HEADER_CHARS + 1))
    assert inputs.is_printable_ascii("")


def test_request_targets_are_judged_as_by_the_rule() -> None:
    for code in CODES:
        target = f"/a{chr(code)}"
        expected = RULE.fullmatch(target) is not None and " " not in target
        try:
            inputs.request_target(target, error=InvalidArgument)
            accepted = True
        except InvalidArgument:
            accepted = False
        assert accepted == expected, hex(code)
    assert inputs.request_target("/" + "a" * 20_000, error=InvalidArgument)  # no length limit here
