"""Prometheus metrics of the operator (prefix ``kubekms_operator_``); never key material in labels."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

RECONCILES = Counter(
    "kubekms_operator_reconciles_total",
    "KMSKey reconciliations by trigger and result (synced or the Synced reason).",
    ["trigger", "result"],
)
KEY_CHANGES = Counter("kubekms_operator_key_changes_total", "Changes the operator made to keys, by kind.", ["reason"])
BACKEND_HEALTH = Counter(
    "kubekms_operator_backend_health_checks_total", "Health calls to KMSBackends by result.", ["result"]
)
RECONCILE_SECONDS = Histogram(
    "kubekms_operator_reconcile_seconds", "Time of one KMSKey reconciliation, backend calls included.", ["trigger"]
)
