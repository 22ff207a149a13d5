"""Prometheus metrics of the plugin (prefix ``kubekms_plugin_``), in a registry of its own, with
prometheus_client's standard process (``process_``: CPU, memory) and garbage-collector
(``python_gc_``) collectors: CPU per call and collections per generation are how a call's tail is
told apart from the framework's cost and from a collection pause (``bench/plugin_bench.py``).

Never a key, a KEK id or key material: the current key_id appears only as a hash.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.gc_collector import GCCollector
from prometheus_client.process_collector import ProcessCollector

from kubekms.plugin_ciphertext import key_id_hash


class PluginMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.calls = Counter(
            "kubekms_plugin_calls", "gRPC calls by method and status code", ["method", "code"], registry=self.registry
        )
        self.latency = Histogram(
            "kubekms_plugin_call_seconds",
            "gRPC call latency by method",
            ["method"],
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        self.backend_calls = Counter(
            "kubekms_plugin_backend_calls",
            "calls to the KMS backend by operation and result",
            ["operation", "result"],
            registry=self.registry,
        )
        self.kek_cache = Counter(
            "kubekms_plugin_kek_cache", "KEK cache lookups on Decrypt", ["result"], registry=self.registry
        )
        self.keks_created = Counter("kubekms_plugin_keks_created", "local KEKs created", registry=self.registry)
        self.healthy = Gauge("kubekms_plugin_healthy", "1 when the plugin can encrypt now", registry=self.registry)
        self.current_key = Gauge(
            "kubekms_plugin_current_key_id_info",
            "1 for the hash of the key_id reported to kube-apiserver",
            ["key_id_hash"],
            registry=self.registry,
        )

    def set_current_key(self, key_id: str) -> None:
        self.current_key.clear()
        self.current_key.labels(key_id_hash(key_id)).set(1)
