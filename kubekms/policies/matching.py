"""AWS's ``*`` and ``?`` wildcards (Action, Resource, StringLike), nothing else: ``[`` is a plain character."""

from __future__ import annotations

import fnmatch
import functools
import re


@functools.lru_cache(maxsize=4096)
def _compiled(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    # fnmatch's translation matches in polynomial time: a naive ".*" per "*" backtracks exponentially on
    # "*a*a*a...b" (a policy author's pattern against a caller's long context value hung the server);
    # "[[]" is fnmatch's literal "[", so a bracket stays a plain character
    translated = fnmatch.translate(pattern.replace("[", "[[]"))
    return re.compile(translated, re.IGNORECASE if ignore_case else 0)


def wildcard_match(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    return _compiled(pattern, ignore_case).fullmatch(value) is not None
