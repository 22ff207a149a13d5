"""``KEY=VALUE`` options (tags, encryption context): one parser for every subcommand."""

from __future__ import annotations

from collections.abc import Iterable

import click


def key_value_pairs(values: Iterable[str], option: str) -> dict[str, str]:
    """``["a=1", "b="]`` → ``{"a": "1", "b": ""}``; a value without ``=``, with an empty key or with a key
    given before is refused (a later copy silently replacing an earlier one would, for ``decrypt
    --context``, let an appended pair override the one a script requires)."""
    pairs: dict[str, str] = {}
    for value in values:
        key, separator, text = value.partition("=")
        if not separator or not key:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint=option)
        if key in pairs:
            raise click.BadParameter(f"{key!r} given twice", param_hint=option)
        pairs[key] = text
    return pairs
