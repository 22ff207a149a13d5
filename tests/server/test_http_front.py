"""The server's HTTP front on a real socket: keep-alive, pipelining, chunked bodies, 100-continue, HEAD, limits,
malformed input, slow clients, graceful stop, and the hand-over of a connection to aiohttp (plain and TLS)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from aiohttp import web
from http_front_support import Front, closed_by_server, read_answer, running_front, tls_contexts

from kubekms.server.http_front import HttpLimits
from kubekms.server.http_messages import HttpRequest, HttpResponse

SMALL = HttpLimits(max_body_bytes=1024)


async def echo(request: HttpRequest) -> HttpResponse:
    """The method, target, a header and the body's size (or that it was too large), as the handler saw them."""
    size = "too-large" if request.body_too_large else str(len(request.body))
    text = f"{request.method} {request.raw_path} {request.headers.get('X-Thing', '-')} {size}"
    return HttpResponse.text(200, text, {"X-Remote": request.remote or "-"})


async def connect(front: Front, tls: ssl.SSLContext | None = None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", front.port, ssl=tls)


async def test_keep_alive_and_http10_and_connection_close() -> None:
    async with running_front(echo) as front:
        reader, writer = await connect(front)
        for n in range(3):  # one connection, three requests
            writer.write(f"GET /a{n} HTTP/1.1\r\nHost: x\r\nx-thing: v{n}\r\n\r\n".encode())
            answer = await read_answer(reader)
            assert (answer.status, answer.body) == (200, f"GET /a{n} v{n} 0".encode())
            assert answer.headers["x-remote"] == "127.0.0.1" and "connection" not in answer.headers
        writer.write(b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = await read_answer(reader)
        assert answer.headers["connection"] == "close" and await closed_by_server(reader)
        writer.close()
        reader, writer = await connect(front)
        writer.write(b"GET /old HTTP/1.0\r\n\r\n")  # HTTP/1.0 without keep-alive: one request
        assert (await read_answer(reader)).body == b"GET /old - 0" and await closed_by_server(reader)
        writer.close()
        reader, writer = await connect(front)
        writer.write(b"GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /again HTTP/1.0\r\n\r\n")
        first = await read_answer(reader)
        assert first.headers["connection"] == "keep-alive"
        assert (await read_answer(reader)).body == b"GET /again - 0" and await closed_by_server(reader)
        writer.close()


async def test_pipelined_requests_are_answered_in_order_even_when_the_first_is_slowest() -> None:
    async def handler(request: HttpRequest) -> HttpResponse:
        if request.raw_path == "/first":
            await asyncio.sleep(0.05)  # not a synchronisation: makes the first answer the slowest to compute
        return await echo(request)

    async with running_front(handler) as front:
        reader, writer = await connect(front)
        writer.write(b"".join(f"GET /{name} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for name in ("first", "b", "c")))
        bodies = [(await read_answer(reader)).body for _ in range(3)]
        assert bodies == [b"GET /first - 0", b"GET /b - 0", b"GET /c - 0"]
        writer.close()


async def test_chunked_bodies_expect_continue_and_head() -> None:
    async with running_front(echo, limits=SMALL) as front:
        reader, writer = await connect(front)
        writer.write(
            b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n"
        )
        assert (await read_answer(reader)).body == b"POST /c - 8"
        writer.write(b"POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"  # before the body is sent
        writer.write(b"body")
        assert (await read_answer(reader)).body == b"POST /e - 4"
        writer.write(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await read_answer(reader, head_request=True)
        assert head.headers["content-length"] == str(len(b"HEAD /h - 0"))  # the length, never the body
        assert (await read_answer(reader)).body == b"GET /after - 0"
        writer.close()


@pytest.mark.parametrize(
    "request_head",
    [
        b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 50000000\r\n\r\n" + b"x" * 4096,
        b"POST /big HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1025\r\n\r\n",
        b"POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + b"400\r\n" + b"x" * 1024 + b"\r\n"
        b"1\r\nx\r\n",  # one byte over the limit, chunked
    ],
)
async def test_a_body_over_the_limit_reaches_the_handler_unread_and_the_connection_closes(request_head: bytes) -> None:
    async with running_front(echo, limits=SMALL) as front:
        reader, writer = await connect(front)
        writer.write(request_head)
        answer = await read_answer(reader)  # no 100 Continue for a body that will not be read
        assert (answer.status, answer.body) == (200, b"POST /big - too-large")
        assert answer.headers["connection"] == "close" and await closed_by_server(reader)
        writer.close()


@pytest.mark.parametrize(
    ("request_bytes", "status", "reason"),
    [
        (b"GET /x HTTP/1.1\r\nBad Header Line\r\n\r\n", 400, "HTTP.BadHttpMessage"),
        (b"G@T /x HTTP/1.1\r\n\r\n", 400, "HTTP.BadHttpMethod"),
        (b"GET /x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400, "HTTP.BadHttpMessage"),
        (b"GET /" + b"a" * 8190 + b" HTTP/1.1\r\n\r\n", 414, "HTTP.LineTooLong"),
        (b"GET / HTTP/1.1\r\nX-Big: " + b"a" * 8190 + b"\r\n\r\n", 431, "HTTP.LineTooLong"),
        (
            b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % n for n in range(129)) + b"\r\n",
            431,
            "HTTP.TooManyHeaders",
        ),
    ],
)
async def test_malformed_or_oversized_heads_get_a_plain_refusal_counted_once_and_close(
    request_bytes: bytes, status: int, reason: str
) -> None:
    calls: list[HttpRequest] = []

    async def handler(request: HttpRequest) -> HttpResponse:
        calls.append(request)
        return await echo(request)

    async with running_front(handler) as front:
        reader, writer = await connect(front)
        writer.write(b"GET /fine HTTP/1.1\r\nHost: x\r\n\r\n" + request_bytes)
        assert (await read_answer(reader)).status == 200  # the good request before it is answered first
        refusal = await read_answer(reader)
        assert refusal.status == status and refusal.headers["content-type"].startswith("text/plain")
        assert refusal.headers["connection"] == "close" and await closed_by_server(reader)
        assert [call.raw_path for call in calls] == ["/fine"] and front.refused(reason) == 1
        writer.close()


async def test_a_head_split_over_many_reads_is_bounded_too() -> None:
    async with running_front(echo, limits=HttpLimits(max_head_bytes=4096)) as front:
        reader, writer = await connect(front)
        writer.write(b"GET / HTTP/1.1\r\nX-Slow: ")
        for _ in range(10):  # a value of 5,000 bytes arriving in pieces: refused once over the bound
            writer.write(b"a" * 500)
            await writer.drain()
        answer = await read_answer(reader)
        assert answer.status == 431 and await closed_by_server(reader)
        writer.close()


async def test_a_slow_head_and_an_idle_connection_are_closed() -> None:
    limits = HttpLimits(request_timeout=0.3, keepalive_timeout=0.5)
    async with running_front(echo, limits=limits) as front:
        reader, writer = await connect(front)
        writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n")  # never finishes its head
        answer = await read_answer(reader)
        assert answer.status == 408 and await closed_by_server(reader, within=5)
        assert front.refused("HTTP.RequestTimeout") == 1
        writer.close()
        reader, writer = await connect(front)
        writer.write(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await read_answer(reader)).status == 200
        assert await closed_by_server(reader, within=5)  # idle after its answer: closed by the keep-alive timeout
        writer.close()


async def test_a_client_that_does_not_read_its_answers_stops_the_server_reading() -> None:
    async def big(request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, b"a" * 256 * 1024)

    async with running_front(big) as front:
        reader, writer = await connect(front)
        body = b"b" * 60 * 1024
        request = b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        writer.write(request * 200)  # 12 MB of requests, 50 MB of answers: more than any socket buffer holds
        async with asyncio.timeout(10):
            while not any(c.reading_paused for c in front.front.connections):  # noqa: ASYNC110 - polled, deadline
                await asyncio.sleep(0.01)
        for _ in range(200):  # reading the answers resumes it: every request is answered, in order
            answer = await read_answer(reader)
            assert (answer.status, len(answer.body)) == (200, 256 * 1024)
        writer.close()


async def test_a_graceful_stop_answers_the_requests_in_flight_then_closes() -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def handler(request: HttpRequest) -> HttpResponse:
        entered.set()
        await asyncio.wait_for(release.wait(), 5)
        return await echo(request)

    async with running_front(handler) as front:
        reader, writer = await connect(front)
        idle_reader, idle_writer = await connect(front)
        writer.write(b"GET /in-flight HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.wait_for(entered.wait(), 5)
        stopping = asyncio.create_task(front.front.stop(grace=5))
        assert await closed_by_server(idle_reader)  # nothing in flight there: closed at once
        release.set()
        answer = await read_answer(reader)
        assert (answer.status, answer.headers["connection"]) == (200, "close")
        assert await closed_by_server(reader)
        await asyncio.wait_for(stopping, 5)
        writer.close()
        idle_writer.close()


async def aiohttp_console(request: web.BaseRequest) -> web.Response:
    body = await request.read()
    return web.Response(text=f"aiohttp {request.method} {request.path} {len(body)}")


@pytest.mark.parametrize("use_tls", [False, True], ids=["plain", "tls"])
async def test_a_console_request_hands_the_kept_alive_connection_to_aiohttp(tmp_path: Path, use_tls: bool) -> None:
    server_tls, client_tls = tls_contexts(tmp_path) if use_tls else (None, None)
    aiohttp_server = web.Server(aiohttp_console)
    async with running_front(echo, tls=server_tls, handoff=aiohttp_server) as front:
        reader, writer = await connect(front, client_tls)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await read_answer(reader)).body == b"GET /healthz - 0"  # the front's
        writer.write(b"GET /console/ HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await read_answer(reader)).body == b"aiohttp GET /console/ 0"
        assert not front.front.connections  # the connection is aiohttp's now
        writer.write(b"POST /console/form HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        assert (await read_answer(reader)).body == b"aiohttp POST /console/form 3"
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # stays with aiohttp (the server routes it back)
        assert (await read_answer(reader)).body == b"aiohttp GET /healthz 0"
        writer.close()
    await aiohttp_server.shutdown(1)


async def test_pipelined_requests_around_a_console_request_keep_their_order() -> None:
    aiohttp_server = web.Server(aiohttp_console)
    async with running_front(echo, handoff=aiohttp_server) as front:
        reader, writer = await connect(front)
        writer.write(
            b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /console/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"
            b"GET /third HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        bodies = [(await read_answer(reader)).body for _ in range(3)]
        assert bodies == [b"GET /first - 0", b"aiohttp POST /console/c 2", b"aiohttp GET /third 0"]
        writer.close()
    await aiohttp_server.shutdown(1)


async def test_header_names_are_read_as_sent_beyond_the_bounded_cache_of_decoded_names() -> None:
    """The front keeps at most HEADER_NAMES_KEPT decoded names (a client chooses them): names past that bound are
    still read, case-insensitively, and the cache does not grow."""
    from kubekms.server import http_front

    async def named(request: HttpRequest) -> HttpResponse:
        wanted = request.headers.get("X-Wanted-Name", "")
        return HttpResponse.text(200, f"{request.headers.get(wanted, '-')} {request.headers.get('x-thing', '-')}")

    async with running_front(named) as front:
        reader, writer = await connect(front)
        for n in range(http_front.HEADER_NAMES_KEPT + 20):
            writer.write(f"GET / HTTP/1.1\r\nHost: x\r\nX-Wanted-Name: X-Name-{n}\r\nx-NAME-{n}: v{n}\r\n"
                         f"X-THING: t{n}\r\n\r\n".encode())  # fmt: skip
            assert (await read_answer(reader)).body == f"v{n} t{n}".encode()
        assert len(http_front._header_names) == http_front.HEADER_NAMES_KEPT
        writer.close()
