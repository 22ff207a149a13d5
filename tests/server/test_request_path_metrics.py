"""Request metrics are counted in batches: the same values as one update per request, at most FLUSH_SECONDS late."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.parser import text_string_to_metric_families

from kubekms.server.metrics import FLUSH_SECONDS, LATENCY_BUCKETS, ServerMetrics

OBSERVED = [("aws:Decrypt", "OK", 0.0005), ("aws:Decrypt", "OK", 0.0006), ("aws:Decrypt", "KMS.0207", 3.0),
            ("describe-key", "OK", 0.0), ("aws:Decrypt", "OK", 0.02)]  # fmt: skip
FAMILIES = ("kubekms_server_requests", "kubekms_server_request_duration_seconds")


def _samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text.decode())
        if family.name in FAMILIES
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def _one_update_per_request() -> bytes:
    """What prometheus_client shows for the same requests, each observed at once."""
    from prometheus_client import generate_latest

    registry = CollectorRegistry()
    requests = Counter(FAMILIES[0], "", ("operation", "code"), registry=registry)
    latency = Histogram(FAMILIES[1], "", ("operation",), buckets=LATENCY_BUCKETS, registry=registry)
    for operation, code, seconds in OBSERVED:
        requests.labels(operation, code).inc()
        latency.labels(operation).observe(seconds)
    return generate_latest(registry)


def test_a_scrape_counts_every_request_observed_before_it_as_single_updates_would() -> None:
    async def observe_then_scrape() -> bytes:
        metrics = ServerMetrics()
        for observed in OBSERVED:
            metrics.observe(*observed)
        return metrics.render()  # at once: the scrape flushes first

    assert _samples(asyncio.run(observe_then_scrape())) == _samples(_one_update_per_request())


def test_observations_reach_the_values_within_the_flush_interval_without_a_scrape() -> None:
    async def observe_then_wait() -> float:
        metrics = ServerMetrics()
        metrics.observe("aws:GenerateDataKey", "OK", 0.001)
        started = time.monotonic()
        labels = {"operation": "aws:GenerateDataKey", "code": "OK"}
        # the registry itself, not a scrape (which flushes)
        while metrics.registry.get_sample_value("kubekms_server_requests_total", labels) != 1:
            assert time.monotonic() - started < FLUSH_SECONDS + 5, "never flushed"
            await asyncio.sleep(0.01)  # polling interval of a condition with a deadline
        return time.monotonic() - started

    assert asyncio.run(observe_then_wait()) >= FLUSH_SECONDS * 0.5  # batched, not written at once


def test_without_an_event_loop_an_observation_counts_at_once() -> None:
    metrics = ServerMetrics()
    metrics.observe("describe-key", "OK", 0.001)
    labels = {"operation": "describe-key", "code": "OK"}
    assert metrics.registry.get_sample_value("kubekms_server_requests_total", labels) == 1


def test_observations_left_by_a_closed_event_loop_are_flushed_from_the_next_one() -> None:
    metrics = ServerMetrics()
    labels = {"operation": "describe-key", "code": "OK"}

    async def observe() -> None:
        metrics.observe("describe-key", "OK", 0.001)

    asyncio.run(observe())  # its loop closes before the flush it scheduled

    async def observe_then_wait() -> None:
        await observe()
        started = time.monotonic()
        while metrics.registry.get_sample_value("kubekms_server_requests_total", labels) != 2:
            assert time.monotonic() - started < FLUSH_SECONDS + 5, "never flushed"
            await asyncio.sleep(0.01)  # polling interval of a condition with a deadline

    asyncio.run(observe_then_wait())
