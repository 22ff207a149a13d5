"""kopf's namespace discovery with the operator's fix: a namespace that a listing returns is served.

kopf lists the namespaces a second time when its namespace watch starts and, unfixed, ignores
what that listing returns: a namespace created between its two listings (as the operator
comes up) was never served (reproduced on a fresh control plane, 1 start in 4). The race
itself cannot be timed from a test, so this drives kopf's own discovery step with such a
listed namespace, on kopf's own Insights, as the watch does.
"""

from __future__ import annotations

import asyncio

from kopf._cogs.structs import bodies, references
from kopf._core.reactor import observation

from kubekms_operator.kopf_namespaces import serve_listed_namespaces


def listed(name: str) -> bodies.RawEvent:
    return bodies.RawEvent(type=None, object=bodies.RawBody(metadata={"name": name}))  # kopf's form of a listed object


def test_a_listed_namespace_matching_a_pattern_is_served() -> None:
    assert serve_listed_namespaces()
    assert serve_listed_namespaces(), "installing twice keeps the fix"
    insights = references.Insights()

    async def discover() -> None:
        for name in ("team-a", "other"):
            await observation.process_discovered_namespace_event(
                raw_event=listed(name), namespaces=["team-*"], insights=insights
            )

    asyncio.run(discover())
    assert insights.namespaces == {"team-a"}
