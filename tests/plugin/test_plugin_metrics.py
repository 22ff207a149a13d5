"""The plugin's /metrics carries the standard process and garbage-collector collectors: CPU per
call and full collections are what tell a call's tail apart from a collection pause (bench)."""

from __future__ import annotations

from prometheus_client import generate_latest

from kubekms_plugin.metrics import PluginMetrics


def test_process_cpu_and_collections_by_generation_are_exposed() -> None:
    text = generate_latest(PluginMetrics().registry).decode()
    assert "\nprocess_cpu_seconds_total " in text
    assert '\npython_gc_collections_total{generation="2"} ' in text
