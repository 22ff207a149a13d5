"""Prometheus metrics of the server: requests by operation and result code, latency, refusals by reason.

With several workers (issue 15) the supervisor sets ``PROMETHEUS_MULTIPROC_DIR`` (a directory of
its own per run) before a worker starts: prometheus_client then keeps every value in a file
there, and :meth:`ServerMetrics.render` aggregates the files of all workers, dead ones included
(counters do not go back when a worker is restarted).

Requests are counted in memory first and put into the shared values at most :data:`FLUSH_SECONDS`
later, all of a batch in one tight loop: prometheus_client's multiprocess update (a lock, a
``getpid`` and an mmap write per value, three values a request) cost 7 µs of a request amid the
rest of its work, a third of that in a loop of its own. A batch is added up first (requests by
operation and code, latencies by operation into the histogram's buckets and sum), then each value
is updated once (a flush cost 1.8 µs a request when each latency was observed on its own, 0.24
µs added up). So a scrape counts every request this worker answered (it flushes first) and every
request another worker answered more than FLUSH_SECONDS before; a worker killed with SIGKILL loses
what it had not flushed, as its audit records (a worker that exits normally flushes).
"""

from __future__ import annotations

import asyncio
import atexit
import bisect
import os
import weakref

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROCESS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

FLUSH_SECONDS = 0.2  # the longest a request waits in memory before the shared values count it
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class ServerMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "kubekms_server_requests",
            "KMS wire requests by operation and result code (OK or the KMS error code)",
            ("operation", "code"),
            registry=self.registry,
        )
        self._latency = Histogram(
            "kubekms_server_request_duration_seconds",
            "Time from receiving a KMS wire request to answering it",
            ("operation",),
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.maintenance_passes = Counter(
            "kubekms_server_maintenance_passes",
            "Maintenance passes (automatic rotation, destruction after the pending window) over all projects",
            registry=self.registry,
        )
        self.keys_rotated = Counter(
            "kubekms_server_keys_rotated_automatically", "Automatic rotations done", registry=self.registry
        )
        self.keys_destroyed = Counter(
            "kubekms_server_keys_destroyed", "Keys whose material was destroyed after the pending window",
            registry=self.registry,
        )  # fmt: skip
        self._refused = Counter(
            "kubekms_server_refused_requests",
            "Requests refused with a 4xx, by wire (v1, aws, http: unparsable HTTP) and reason (the wire's error code); "
            "connections closed beyond max_connections count as wire http, reason HTTP.TooManyConnections",
            ("wire", "reason"),
            registry=self.registry,
        )
        self.refusal_lines_suppressed = Counter(
            "kubekms_server_refusal_lines_suppressed",
            "Refusals not written to the log because their client exceeded its burst of log lines",
            registry=self.registry,
        )
        # label lookups are the costly part of a prometheus_client update: cache the children
        self._request_children: dict[tuple[str, str], Counter] = {}
        self._latency_children: dict[str, Histogram] = {}
        self._unrecorded: list[tuple[str, str, float]] = []
        self._flush_loop: asyncio.AbstractEventLoop | None = None  # where the next flush is scheduled
        atexit.register(_flush_if_alive, weakref.ref(self))

    def observe(self, operation: str, code: str, seconds: float) -> None:
        """One answered request: counted by the next :meth:`flush`, at most FLUSH_SECONDS from now."""
        self._unrecorded.append((operation, code, seconds))
        if self._flush_loop is None or self._flush_loop.is_closed():  # a closed loop never runs its timer
            try:
                self._flush_loop = asyncio.get_running_loop()
            except RuntimeError:  # no event loop to flush later: at once
                self.flush()
                return
            self._flush_loop.call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        """Put the requests observed since the last flush into the (shared) values."""
        self._flush_loop = None
        unrecorded, self._unrecorded = self._unrecorded, []
        counts: dict[tuple[str, str], int] = {}
        latencies: dict[str, _Latencies] = {}
        for operation, code, seconds in unrecorded:
            counts[(operation, code)] = counts.get((operation, code), 0) + 1
            latency = latencies.get(operation)
            if latency is None:
                latency = latencies[operation] = _Latencies()
            latency.add(seconds)
        for operation, latency in latencies.items():
            histogram = self._latency_children.get(operation)
            if histogram is None:
                histogram = self._latency_children[operation] = self._latency.labels(operation)
            latency.add_to(histogram)
        for (operation, code), count in counts.items():
            counter = self._request_children.get((operation, code))
            if counter is None:
                counter = self._request_children[(operation, code)] = self._requests.labels(operation, code)
            counter.inc(count)

    def refused(self, wire: str, reason: str) -> None:
        self._refused.labels(wire, reason).inc()

    def render(self) -> bytes:
        self.flush()
        directory = os.environ.get(MULTIPROCESS_DIR_VARIABLE)
        if directory is None:
            return generate_latest(self.registry)
        every_worker = CollectorRegistry()
        MultiProcessCollector(every_worker, path=directory)  # type: ignore[no-untyped-call]  # unannotated upstream
        return generate_latest(every_worker)


class _Latencies:
    """One operation's latencies of a batch, by bucket as :meth:`prometheus_client.Histogram.observe` counts them (the
    first bucket whose upper bound is at least the value; the last is +Inf)."""

    __slots__ = ("buckets", "total")

    def __init__(self) -> None:
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)
        self.total = 0.0

    def add(self, seconds: float) -> None:
        self.buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.total += seconds

    def add_to(self, histogram: Histogram) -> None:
        """prometheus_client has no observe for many values: the child's own values, updated as ``observe`` does
        (held to it, bucket bounds included, by tests/server/test_request_path_metrics*.py)."""
        histogram._sum.inc(self.total)
        for index, count in enumerate(self.buckets):
            if count:
                histogram._buckets[index].inc(count)


def _flush_if_alive(metrics: weakref.ref[ServerMetrics]) -> None:
    """At interpreter exit: what a worker observed last still counts (a weak reference: tests make many)."""
    alive = metrics()
    if alive is not None:
        alive.flush()
