"""The HTTP front answers eagerly: a handler that never waits runs in the read's callback, without a task; one that
waits is carried on by a task in the same context, which cancellation, failures and asyncio.timeout reach as usual."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars

from http_front_support import read_answer, running_front

from kubekms.server.http_messages import HttpRequest, HttpResponse

REQUEST = b"GET /x HTTP/1.1\r\nHost: kms\r\n\r\n"
_SEEN: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="unset")


async def _waited() -> None:
    """A real wait on a future the loop resolves later (no timer)."""
    future = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_soon(future.set_result, None)
    await future


async def test_a_handler_that_never_waits_is_answered_without_a_task() -> None:
    tasks: list[asyncio.Task[object] | None] = []

    async def handler(request: HttpRequest) -> HttpResponse:
        tasks.append(asyncio.current_task())
        return HttpResponse.text(200, "now")

    async with running_front(handler) as running:
        reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
        for _ in range(3):  # keep-alive: every request of the connection
            writer.write(REQUEST)
            answer = await read_answer(reader)
            assert (answer.status, answer.body) == (200, b"now")
        writer.close()
    assert tasks == [None, None, None]


async def test_a_handler_that_waits_keeps_its_context_and_gets_a_task_for_the_rest() -> None:
    async def handler(request: HttpRequest) -> HttpResponse:
        token = _SEEN.set(request.raw_path)
        await _waited()
        assert asyncio.current_task() is not None
        async with asyncio.timeout(5):  # needs the current task: there is one after the first wait
            await _waited()
        seen = _SEEN.get()
        _SEEN.reset(token)  # raises ValueError if the rest ran in another context than the start
        return HttpResponse.text(200, seen)

    async with running_front(handler) as running:
        reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
        writer.write(b"GET /first HTTP/1.1\r\nHost: kms\r\n\r\nGET /second HTTP/1.1\r\nHost: kms\r\n\r\n")
        answers = [await read_answer(reader), await read_answer(reader)]  # pipelined: in order
        assert [(answer.status, answer.body) for answer in answers] == [(200, b"/first"), (200, b"/second")]
        writer.close()
    assert _SEEN.get() == "unset"  # nothing leaked into the test's context


async def test_a_handler_failing_after_its_wait_is_answered_500_and_the_connection_goes_on() -> None:
    async def handler(request: HttpRequest) -> HttpResponse:
        await _waited()
        if request.raw_path == "/fail":
            raise RuntimeError("a bug after a wait")
        return HttpResponse.text(200, "fine")

    async with running_front(handler) as running:
        reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
        writer.write(b"GET /fail HTTP/1.1\r\nHost: kms\r\n\r\n")
        assert (await read_answer(reader)).status == 500
        writer.write(REQUEST)
        assert (await read_answer(reader)).body == b"fine"
        writer.close()


async def test_cancelling_the_task_that_carries_a_waiting_handler_reaches_the_handler() -> None:
    carrying: asyncio.Future[asyncio.Task[object]] = asyncio.get_running_loop().create_future()
    cancelled = asyncio.Event()

    async def handler(request: HttpRequest) -> HttpResponse:
        await _waited()
        task = asyncio.current_task()
        assert task is not None
        carrying.set_result(task)
        try:
            await asyncio.get_running_loop().create_future()  # never resolved: only the cancellation ends it
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("not reached")

    async with running_front(handler) as running:
        reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
        writer.write(REQUEST)
        task = await asyncio.wait_for(carrying, 10)
        task.cancel()
        await asyncio.wait_for(cancelled.wait(), 10)
        await asyncio.wait_for(asyncio.wait({task}), 10)
        assert task.cancelled()
        with contextlib.suppress(ConnectionResetError):  # the unanswered request's connection ends (it hung before)
            assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
