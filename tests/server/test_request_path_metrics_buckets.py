"""A flushed batch of latencies lands in the histogram exactly as one ``observe`` per request would put it: every
bucket bound itself, just above it, zero and beyond the last bound, in several operations and batches."""

from __future__ import annotations

import math

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kubekms.server.metrics import LATENCY_BUCKETS, ServerMetrics

FAMILIES = ("kubekms_server_requests", "kubekms_server_request_duration_seconds")
LATENCIES = [0.0, *LATENCY_BUCKETS, *(math.nextafter(bound, math.inf) for bound in LATENCY_BUCKETS), 7.5]


def _samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): round(sample.value, 9)  # sums added in another order
        for family in text_string_to_metric_families(text.decode())
        if family.name in FAMILIES
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


async def test_batched_latencies_fill_the_buckets_and_sum_as_single_observations_do() -> None:
    observed = [(operation, "OK" if index % 3 else "KMS.0207", seconds)
                for operation in ("aws:Decrypt", "create-datakey")
                for index, seconds in enumerate(LATENCIES)]  # fmt: skip
    registry = CollectorRegistry()
    requests = Counter(FAMILIES[0], "", ("operation", "code"), registry=registry)
    latency = Histogram(FAMILIES[1], "", ("operation",), buckets=LATENCY_BUCKETS, registry=registry)
    metrics = ServerMetrics()  # in a running loop: observations wait for the flush (no multiprocess mode here)
    for batch in (observed[:7], observed[7:]):  # two flushes: values add up across batches
        for operation, code, seconds in batch:
            requests.labels(operation, code).inc()
            latency.labels(operation).observe(seconds)
            metrics.observe(operation, code, seconds)
        metrics.flush()
    expected = _samples(generate_latest(registry))
    assert _samples(generate_latest(metrics.registry)) == expected
    assert expected[("kubekms_server_request_duration_seconds_bucket",
                     (("le", "0.0005"), ("operation", "aws:Decrypt")))] == 2  # 0.0 and 0.0005 itself  # fmt: skip
