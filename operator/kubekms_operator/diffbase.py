"""Where kopf finds what a KMSKey looked like when it was last handled: in the status the handlers write anyway.

kopf compares an object with its last handled state (its "diffbase") to tell a creation
from an update from nothing new, and by default keeps that state in an annotation: one
more patch of the object, and one more watch event, after every handled change. A KMSKey's
status already says what was handled, in the same write as the result:
``observedGeneration`` (the spec) and ``lastRotateRequest`` (the ``kubekms.io/rotate``
annotation), both written only by a successful reconciliation, so a failure that kopf
retries stays a creation or an update until it succeeds. A change that failed for good
(not retried) writes no such status: the handler marks it with :data:`HANDLED_ANNOTATION`
in kopf's own patch (:func:`mark_handled`), so that only a further change runs the
handlers again, as kopf's annotation did.

Other kinds (KMSBackend) keep kopf's annotation. The progress of retried handlers stays in
annotations (:class:`Progress`), written only while a handler is retried.

Both storages run on every watch event (the essence is built twice per event), so they copy and
name things the cheap way: the essence is copied value by value instead of by ``copy.deepcopy``,
and the annotation keys, which kopf forms anew on every call, are formed once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

import kopf

from kubekms_operator.spec import GROUP, ROTATE_ANNOTATION

KIND = "KMSKey"
PREFIX = f"operator.{GROUP}"  # kopf leaves annotations under its storages' prefix out of the diff
HANDLED_ANNOTATION = f"{PREFIX}/handled"
UPDATED = "handledBefore"  # marks the essence of an earlier state (kopf tracks no status in an essence)


def handled_mark(body: Mapping[str, Any]) -> str:
    """What a handled state is known by: the generation and the rotate request."""
    meta = body["metadata"]
    return f"{meta.get('generation')} {(meta.get('annotations') or {}).get(ROTATE_ANNOTATION) or ''}"


def mark_handled(body: Mapping[str, Any], patch: kopf.Patch) -> None:
    """This state was handled though the status does not say so (the change failed for good)."""
    patch.metadata.setdefault("annotations", {})[HANDLED_ANNOTATION] = handled_mark(body)


def is_handled(body: Mapping[str, Any]) -> bool:
    meta, status = body["metadata"], body.get("status") or {}
    annotations = meta.get("annotations") or {}
    rotate = annotations.get(ROTATE_ANNOTATION) or ""
    # An annotation removed asks for nothing: the last request acted on stays in status.
    rotated = rotate in ("", status.get("lastRotateRequest"))
    synced = status.get("observedGeneration") == meta.get("generation") and rotated
    return synced or annotations.get(HANDLED_ANNOTATION) == handled_mark(body)


def ever_handled(body: Mapping[str, Any]) -> bool:
    meta, status = body["metadata"], body.get("status") or {}
    return status.get("observedGeneration") is not None or HANDLED_ANNOTATION in (meta.get("annotations") or {})


def copied(value: Any) -> Any:
    """A copy of a JSON value (dicts, lists, scalars): what ``copy.deepcopy`` gives for these, ~10x faster."""
    if isinstance(value, dict):
        return {name: copied(item) for name, item in value.items()}
    if isinstance(value, list):
        return [copied(item) for item in value]
    return value


class KeysFormedOnce:
    """A mixin for kopf's annotation storages: their keys formed once per key name. kopf forms them on
    every call (several per handler and event); they depend on the body only for a ReplicaSet owned by
    a Deployment, which this operator never serves."""

    def make_keys(self, key: str, *, body: kopf.Body | None = None) -> Iterable[str]:
        formed: dict[str, list[str]] = self.__dict__.setdefault("_formed_keys", {})
        if key not in formed:
            formed[key] = list(super().make_keys(key))  # type: ignore[misc]  # kopf's, next in the MRO
        return formed[key]


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
UNTRACKED = frozenset({"apiVersion", "kind", "metadata", "status"})


class KeyStatusDiffBase(KeysFormedOnce, kopf.AnnotationsDiffBaseStorage):
    """KMSKeys: the diffbase from status (nothing stored); other kinds: kopf's annotation."""

    def __init__(self) -> None:
        super().__init__(prefix=PREFIX, key="last-handled-configuration")

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        """kopf's essence (``AnnotationsDiffBaseStorage.build``): the body without its identity, metadata
        and status, plus its labels and annotations less kubectl's last applied configuration and the
        annotations of kopf's storages. kopf deep-copies the whole body first (status and managedFields
        included) and drops most of it: ~9 % of the operator's CPU in bench/operator_bench.py."""
        if extra_fields:
            return super().build(body=body, extra_fields=extra_fields)
        meta = body.get("metadata") or {}
        essence: dict[str, Any] = {name: copied(value) for name, value in body.items() if name not in UNTRACKED}
        kept = essence["metadata"] = {name: copied(meta[name]) for name in ("labels", "annotations") if name in meta}
        if kept.get("annotations"):
            storages = self._detect_marked_prefixes(kept["annotations"])
            ours = set(self.make_keys(self.key, body=body))
            kept["annotations"] = {
                name: value
                for name, value in kept["annotations"].items()
                if name != LAST_APPLIED and name not in ours and not any(name.startswith(f"{p}/") for p in storages)
            }
        result = cast(kopf.BodyEssence, essence)
        self.remove_empty_stanzas(result)
        return result

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        if body.get("kind") != KIND:
            return super().fetch(body=body)
        if not ever_handled(body):
            return None  # a creation
        essence = self.build(body=body)
        if is_handled(body):
            return essence  # nothing new
        return kopf.BodyEssence(**essence, status={UPDATED: True})  # an update: differs in a field never tracked

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        if body.get("kind") != KIND:
            super().store(body=body, patch=patch, essence=essence)


class Progress(KeysFormedOnce, kopf.AnnotationsProgressStorage):
    """kopf's progress annotations under :data:`PREFIX`, without the "kopf-managed" marker.

    kopf adds that marker to an object the first time it stores progress, so that other
    kopf-based operators leave our annotations out of their diffs: one more patch per object
    even when every handler succeeds at once (its progress then written and purged in the same
    patch, which nets to nothing). Its own diffs leave our keys out without it (``clear``).
    """

    def __init__(self) -> None:
        super().__init__(prefix=PREFIX)

    def _store_marker(self, prefix: str, patch: kopf.Patch, body: kopf.Body) -> None:
        pass
