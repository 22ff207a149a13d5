"""Units without servers: the loop bridge, key references, the aad of an encryption context, frame sizes."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from kubekms.envelope import Envelope, InvalidRequest, KeyRef, Keyring
from kubekms.envelope.keys import context_aad
from kubekms.envelope.loop import LoopThread
from kubekms.envelope.messages import MAX_FRAME_BYTES
from kubekms.errors import NotFound, Unavailable
from kubekms.providers import BackendConfig


@pytest.fixture
def loop_thread() -> LoopThread:
    bridge = LoopThread()
    yield bridge
    bridge.close()


def test_results_and_errors_cross_the_bridge(loop_thread: LoopThread) -> None:
    async def where() -> str:
        return threading.current_thread().name

    async def refuse() -> None:
        raise NotFound("no such key")

    assert loop_thread.run(where(), 5) == "kubekms-envelope-loop"
    with pytest.raises(NotFound, match="no such key"):
        loop_thread.run(refuse(), 5)


def test_a_call_from_the_loop_itself_is_refused_not_deadlocked(loop_thread: LoopThread) -> None:
    async def inner() -> int:
        return 1

    async def outer() -> int:
        return loop_thread.run(inner(), 5)

    with pytest.raises(RuntimeError, match="wait on itself"):
        loop_thread.run(outer(), 5)


def test_a_slow_call_times_out_and_is_cancelled(loop_thread: LoopThread) -> None:
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    started = time.monotonic()
    with pytest.raises(Unavailable, match=r"did not finish within 0\.2 s"):
        loop_thread.run(forever(), 0.2)
    assert time.monotonic() - started < 5
    assert cancelled.wait(5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("payments", KeyRef("default", "payments")),
        ("dr:alias/payments", KeyRef("dr", "alias/payments")),
        ("arn:aws:kms:eu-central-1:1:key/k", KeyRef("default", "arn:aws:kms:eu-central-1:1:key/k")),
        ("dr:arn:aws:kms:eu-central-1:1:key/k", KeyRef("dr", "arn:aws:kms:eu-central-1:1:key/k")),
    ],
)
def test_key_references(text: str, expected: KeyRef) -> None:
    assert KeyRef.parse(text, {"dr", "default"}, "default") == expected


@pytest.mark.parametrize("text", ["", "dr:"])
def test_bad_key_references(text: str) -> None:
    with pytest.raises(InvalidRequest):
        KeyRef.parse(text, {"dr"}, "default")


def test_context_aad_is_canonical_bounded_and_injective() -> None:
    assert context_aad({"a": "1", "b": "2"}) == context_aad({"b": "2", "a": "1"})
    assert context_aad({"a": "1", "b": "2"}) != context_aad({"a": "12", "b": ""})
    assert context_aad({"ab": "c"}) != context_aad({"a": "bc"})
    assert len(context_aad({f"k{i}": "v" * 1000 for i in range(100)})) <= 128  # the v1.0 wire's limit


@pytest.mark.parametrize("frame_bytes", [0, -128, 1000, 4096 + 16, MAX_FRAME_BYTES + 128])
def test_frame_size_must_be_a_positive_multiple_of_128_up_to_the_bound(frame_bytes: int, tmp_path: Path) -> None:
    unopened = Keyring({"l": BackendConfig(provider="local", state_dir=tmp_path)})  # no I/O until open()
    with pytest.raises(InvalidRequest, match=f"frame size {frame_bytes}: a multiple of 128"):
        Envelope(unopened, frame_bytes=frame_bytes)
