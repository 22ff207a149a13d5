"""Finishing a rotation: rewrite every Secret so etcd holds only the new key version's ciphertext.

After the key that encrypts the cluster rotates, the KMS v2 plugin reports a new
key_id; kube-apiserver re-seeds and encrypts new writes under it, but what is already
in etcd stays under the old key version until it is written again. A no-op update
through the API (what the Kubernetes docs recommend) is enough: the apiserver's
storage layer notices that the stored value is stale (its key_id is not the current
one) and writes it again; for values already current the update is a no-op.

Before rewriting, the pass waits until the apiserver really writes with the new
key_id, read from its own metric
``apiserver_envelope_encryption_key_id_hash_last_timestamp_seconds{transformation_type="to_storage"}``
(it labels writes by ``sha256:<hex(sha256(key_id))>``) after touching a probe Secret.
Rewriting earlier would find nothing stale and finish under the old key.

Progress lives in the KMSKey status (``reencryption``), written after every page, so
a restarted operator resumes after the last Secret it finished (etcd lists Secrets in
key order ``namespace/name``, which makes "after" well defined). Without a rate limit the
Secrets of a page are rewritten by a few concurrent requests; the page counts as done, and
is saved, only once all of them are.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from prometheus_client.parser import text_string_to_metric_families

from kubekms.plugin_ciphertext import key_id_hash

logger = logging.getLogger(__name__)

KEY_ID_METRIC = "apiserver_envelope_encryption_key_id_hash_last_timestamp_seconds"
PROBE_SECRET = "kubekms-reencryption-probe"
PAGE_SIZE = 100
# Concurrent rewrites within a page when unlimited: one at a time leaves the apiserver idle
# between round trips (bench/reencryption_bench.py); within the client's connection pool (10).
REWRITE_CONCURRENCY = 8
# Answers that go away by themselves: 429 while storage (re)initializes after a restart, 5xx
# while etcd or the apiserver recover, 410 when a list's continue token expired (the pass
# lists again from its saved resumeAfter).
TRANSIENT_STATUSES = frozenset({410, 429, 500, 502, 503, 504})


def is_transient(error: BaseException) -> bool:
    """True for an apiserver failure worth retrying soon: no answer at all, or a temporary status."""
    if isinstance(error, ApiException):
        return not error.status or error.status in TRANSIENT_STATUSES
    # The official client surfaces refused, reset and timed-out connections as urllib3 errors.
    return isinstance(error, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError)


def describe_failure(error: BaseException) -> str:
    """A one-line reason for logs (an ApiException's str carries every header and the body)."""
    if isinstance(error, ApiException):
        return f"{error.status} {error.reason}"
    return f"{type(error).__name__}: {error}"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Progress:
    """``status.reencryption`` of the KMSKey that encrypts the cluster."""

    keyVersion: int  # field names as in the status
    done: int = 0
    total: int = 0
    startedAt: str = ""
    finishedAt: str = ""
    resumeAfter: str = ""

    @classmethod
    def from_status(cls, status: dict[str, Any] | None) -> Progress | None:
        if not status or "keyVersion" not in status:
            return None
        fields = {name: status[name] for name in cls.__dataclass_fields__ if name in status}
        return cls(**fields)

    def as_status(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def finished(self) -> bool:
        return bool(self.finishedAt)


class Rewriter:
    """Talks to kube-apiserver for one re-encryption (synchronous: run it in a thread)."""

    def __init__(self, api_client: client.ApiClient, *, provider_name: str, probe_namespace: str) -> None:
        self._api = api_client
        self._core = client.CoreV1Api(api_client)
        self._provider_name = provider_name
        self._probe_namespace = probe_namespace

    # --- has the apiserver adopted the new key? -------------------------------------------

    def touch_probe(self) -> None:
        """Write the probe Secret so the apiserver encrypts once with its current key_id."""
        body = {
            "metadata": {
                "name": PROBE_SECRET,
                "annotations": {"kubekms.io/probe": _now()},
                "labels": {"app.kubernetes.io/managed-by": "kubekms"},
            },
            "type": "Opaque",
        }
        try:
            self._core.patch_namespaced_secret(PROBE_SECRET, self._probe_namespace, body)
        except ApiException as error:
            if error.status != 404:
                raise
            self._core.create_namespaced_secret(self._probe_namespace, body)

    def writes_with(self, key_id: str) -> bool:
        """True once the apiserver has written an object encrypted under ``key_id``."""
        response = self._api.call_api(
            "/metrics", "GET", auth_settings=["BearerToken"], _preload_content=False, _return_http_data_only=True
        )
        wanted = key_id_hash(key_id)
        for family in text_string_to_metric_families(response.data.decode()):
            if family.name != KEY_ID_METRIC:
                continue
            for sample in family.samples:
                labels = sample.labels
                if (
                    labels.get("transformation_type") == "to_storage"
                    and labels.get("provider_name") == self._provider_name
                    and labels.get("key_id_hash") == wanted
                ):
                    return True
        return False

    # --- rewriting ------------------------------------------------------------------------

    def pages(self, resume_after: str) -> Iterator[tuple[list[dict[str, Any]], int]]:
        """Secrets after ``resume_after`` ("namespace/name"), a page at a time, with the total count."""
        token: str | None = None
        total: int | None = None
        while True:
            response = self._core.list_secret_for_all_namespaces(
                limit=PAGE_SIZE, _continue=token, _preload_content=False
            )
            listing = json.loads(response.data)
            items = listing.get("items") or []
            metadata = listing.get("metadata") or {}
            remaining = int(metadata.get("remainingItemCount") or 0)
            if total is None:  # later pages count only what is left after them
                total = len(items) + remaining
            yield [item for item in items if _secret_ref(item) > resume_after], total
            token = metadata.get("continue")
            if not token:
                return

    def rewrite(self, secret: dict[str, Any]) -> None:
        """A no-op update; the apiserver re-encrypts the stored value when it is stale."""
        metadata = secret["metadata"]
        try:
            # The answer is drained, not turned into a V1Secret: that model conversion was most of
            # the client's CPU per Secret, on cores shared with the apiserver and etcd.
            answer = self._core.replace_namespaced_secret(
                metadata["name"], metadata["namespace"], secret, _preload_content=False
            )
            answer.drain_conn()
        except ApiException as error:
            # 409: written by someone else meanwhile, hence already under the current key.
            # 404: deleted meanwhile. Both leave nothing stale behind.
            if error.status not in (404, 409):
                raise


def _secret_ref(secret: dict[str, Any]) -> str:
    metadata = secret["metadata"]
    return f"{metadata['namespace']}/{metadata['name']}"


class _RateLimit:
    """At most ``max_rate`` Secrets per second (0 = unlimited), paced by sleeping in the worker thread."""

    def __init__(self, max_rate: float) -> None:
        self._interval = 1.0 / max_rate if max_rate > 0 else 0.0
        self._next = time.monotonic()

    def wait(self, secret: dict[str, Any]) -> dict[str, Any]:
        if self._interval:
            time.sleep(max(0.0, self._next - time.monotonic()))
            self._next = max(self._next + self._interval, time.monotonic())
        return secret


def run_pass(
    rewriter: Rewriter,
    progress: Progress,
    save: Callable[[Progress], None],
    should_stop: Callable[[], bool],
    max_rate: float = 0.0,
    concurrency: int = REWRITE_CONCURRENCY,
) -> Progress:
    """Rewrite every Secret after ``progress.resumeAfter``; save progress after each page.

    ``max_rate`` (Secrets per second, 0 = unlimited) spares etcd and the apiserver on
    big clusters: a rewrite is a real write wherever the value was stale.
    """
    if not progress.startedAt:
        progress.startedAt = _now()
    with ThreadPoolExecutor(1 if max_rate > 0 else concurrency, "reencryption") as pool:
        limit = _RateLimit(max_rate)
        for page, total in rewriter.pages(progress.resumeAfter):
            if should_stop():
                return progress
            for _ in pool.map(lambda secret: rewriter.rewrite(limit.wait(secret)), page):
                pass  # raises the first failure; the page is then redone from the saved resumeAfter
            if page:
                progress.done += len(page)
                progress.resumeAfter = _secret_ref(page[-1])
            progress.total = max(total, progress.done)
            save(progress)
    progress.total = progress.done
    progress.finishedAt = _now()
    save(progress)
    logger.info(
        "re-encryption finished", extra={"fields": {"key_version": progress.keyVersion, "secrets": progress.done}}
    )
    return progress
