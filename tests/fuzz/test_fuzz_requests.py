"""Property: whatever a client sends to ``kubekms server`` (both wires), never a 5xx, and no wrong success.

A fixed-seed sample runs in the normal test command; ``bench/fuzz.py`` runs the same
strategies for 100,000 requests against a real server process.
"""

from __future__ import annotations

from fuzz_checks import server_log, snapshot, violations
from fuzz_http import Connection
from fuzz_requests import Target, any_case
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubekms.devenv.kmsserver import KMSServer

SAMPLE = settings(
    max_examples=1500,
    derandomize=True,  # the same requests on every run: a CI failure reproduces locally
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


def test_no_5xx_no_wrong_success_and_refusals_change_nothing(
    fuzz_server: KMSServer, target: Target, connection: Connection
) -> None:
    before = snapshot(connection, target)
    seen: dict[str, int] = {}

    @SAMPLE
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        case = data.draw(any_case(target))
        answer = connection.send(case.request)
        assert not violations(case, answer), (case.defect, case.operation, case.request, violations(case, answer))
        kind = case.defect.split(":")[0] if case.defect else "valid"
        seen[kind] = seen.get(kind, 0) + 1
        if case.defect and case.operation is not None and not case.operation.read_only:
            assert snapshot(connection, target) == before, (case.defect, case.operation.name, case.request)

    run()
    assert fuzz_server.running
    assert snapshot(connection, target) == before
    assert sum(seen.values()) >= SAMPLE.max_examples
    assert set(seen) >= {"valid", "garbage", "body", "envelope", "integer", "marker", "key", "alias"}, seen
    log = server_log(fuzz_server)
    assert "Traceback" not in log and '"level": "error"' not in log
    assert '"message": "request refused"' in log
