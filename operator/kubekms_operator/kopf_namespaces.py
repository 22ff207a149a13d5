"""A fix for kopf 1.45's namespace discovery: namespaces created right after the operator starts were never served.

With ``--namespace`` patterns (``team-*``), kopf lists the namespaces once, then starts a watch of
them whose own first step is a second listing; it ignores what that second listing returns (it
takes it for the initial listing, already handled). A namespace created between the two listings
(the moment the operator comes up, when tests and deployments create theirs) is thus never
served: no watch of its KMSKeys starts until some later event of that very namespace, which may
never come (found: a first KMSKey idle for the length of a test; reproduced on a fresh control
plane, 1 start in 4).

The fix treats listed namespaces like watched ones (adding a namespace twice changes nothing).
It replaces the one kopf function that ignores them, by name, in kopf's own module: private
API, so the replacement is only installed where that function exists and is checked to be the
one this was written against (its module's name and signature); elsewhere kopf runs as it is,
with a warning.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

from kopf._core.reactor import observation

log = logging.getLogger("kubekms.operator")

_FUNCTION = "process_discovered_namespace_event"
_PARAMETERS = ["raw_event", "namespaces", "insights", "stream_pressure", "resource_indexed", "operator_indexed"]


async def _namespace_event_or_listing(*, raw_event: Any, namespaces: Any, insights: Any, **_: Any) -> None:
    async with insights.revised:
        before = set(insights.namespaces)
        observation.revise_namespaces(raw_events=[raw_event], insights=insights, namespaces=namespaces)
        if insights.namespaces != before:
            insights.revised.notify_all()  # the orchestrator starts (or stops) the namespace's watches


def serve_listed_namespaces() -> bool:
    """Install the fix; False (with a warning) if this kopf is not the one it was written for."""
    original = getattr(observation, _FUNCTION, None)
    if original is _namespace_event_or_listing:
        return True
    if original is None or list(inspect.signature(original).parameters)[: len(_PARAMETERS)] != _PARAMETERS:
        log.warning("kopf's namespace discovery is not the one expected: namespaces created at startup may be missed")
        return False
    setattr(observation, _FUNCTION, _namespace_event_or_listing)
    return True
