"""The HTTP front against a hostile client, on raw sockets: request smuggling, malformed framing, odd request
lines and targets, oversized heads and bodies, pipelining floods, slow and vanishing clients, TLS confusion.

Each attack gets one precise 4xx (or a close), nothing behind a refused request is answered, the handler never
sees a refused request, and the front keeps serving other clients. The first part serves the front alone; the
last part attacks the real ``kubekms server`` (its log must stay free of tracebacks).
"""

from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

import pytest
from http_front_support import Front, closed_by_server, read_answer, running_front, tls_contexts
from http_hostile_support import closed_or_reset, condition, exchange, reset, split_answers

from kubekms.devenv.kmsserver import KMSServer
from kubekms.server.http_front import PARSE_SLICE, HttpLimits
from kubekms.server.http_messages import HttpRequest, HttpResponse

SMALL = HttpLimits(max_body_bytes=1024)
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"


class Recorder:
    """A handler that answers the method, target and body size, and keeps every request it was given."""

    def __init__(self) -> None:
        self.requests: list[HttpRequest] = []

    async def __call__(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        size = "too-large" if request.body_too_large else str(len(request.body))
        return HttpResponse.text(200, f"{request.method} {request.raw_path} {size}")

    @property
    def targets(self) -> list[str]:
        return [request.raw_path for request in self.requests]


async def served(front: Front) -> bool:
    """Another client is answered on a fresh connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
    writer.write(b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = await asyncio.wait_for(read_answer(reader), 5)
    writer.close()
    return answer.status == 200


CL_TE = b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n"


@pytest.mark.parametrize(
    ("request_bytes", "reason"),
    [
        # framing that two parsers could read differently: refused, never guessed
        (b"POST / HTTP/1.1\r\nHost: x\r\n" + CL_TE + b"\r\n0\r\n\r\n", "HTTP.BadHttpMessage"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", "HTTP.BadHttpMessage"),
        (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", "HTTP.BadHttpMessage"),
        (b"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab", "HTTP.BadHttpMessage"),
        (b"POST / HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\nab", "HTTP.BadHttpMessage"),
        (b"POST / HTTP/1.1\r\nContent-Length: +2\r\n\r\nab", "HTTP.BadHttpMessage"),
        (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "HTTP.BadHttpMessage"),
        (b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", "HTTP.BadHttpMessage"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", "HTTP.BadHttpMessage"),
        (
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "HTTP.BadHttpMessage",
        ),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", "HTTP.BadHttpMessage"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\nabc", "HTTP.BadHttpMessage"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", "HTTP.BadHttpMessage"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n", "HTTP.BadHttpMessage"),
        (b"GET / HTTP/1.1\r\nX-A: one\r\n two\r\n\r\n", "HTTP.BadHttpMessage"),  # obs-fold
        (
            b"POST / HTTP/1.1\r\nX-A: one\r\n Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nabc",
            "HTTP.BadHttpMessage",
        ),
        (b"GET / HTTP/1.1\nHost: x\n\n", "HTTP.BadHttpMessage"),  # bare LF
        (b"GET / HTTP/1.1\r\nHost: x\nX-B: y\r\n\r\n", "HTTP.BadHttpMessage"),
        (b"GET / HTTP/1.1\rHost: x\r\n\r\n", "HTTP.BadHttpMessage"),  # bare CR
        (b"GET / HTTP/1.1\r\nHost : x\r\n\r\n", "HTTP.BadHttpMessage"),  # a space before the colon
        (b"GET / HTTP/1.1\r\n Host: x\r\n\r\n", "HTTP.BadHttpMessage"),
        (b"GET / HTTP/1.1\r\n: x\r\n\r\n", "HTTP.BadHttpMessage"),
        # chunk sizes and extensions
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n", "HTTP.BadHttpMessage"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nab\r\n", "HTTP.BadHttpMessage"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\nab\r\n", "HTTP.BadHttpMessage"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\nab\r\n0\r\n\r\n", "HTTP.BadHttpMessage"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\nab\r\n0\r\n\r\n", "HTTP.BadHttpMessage"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;na\x00me\r\nab\r\n0\r\n\r\n", "HTTP.BadHttpMessage"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;a\nab\r\n0\r\n\r\n", "HTTP.BadHttpMessage"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXX0\r\n\r\n", "HTTP.BadHttpMessage"),
        # request lines, targets and values
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "HTTP.BadHttpMessage"),
        (b"GET / HTTP/1.2\r\n\r\n", "HTTP.BadHttpMessage"),
        (b"GET / HTTP/3.0\r\n\r\n", "HTTP.BadHttpMessage"),
        (b"GET /a\x00b HTTP/1.1\r\n\r\n", "HTTP.BadHttpMessage"),
        (b"GET /a\rb HTTP/1.1\r\n\r\n", "HTTP.BadHttpMessage"),
        (b"GET /a\tb HTTP/1.1\r\n\r\n", "HTTP.BadHttpMessage"),
        (b"GET /a\xff\xfe HTTP/1.1\r\n\r\n", "HTTP.BadHttpMessage"),
        (b"GET / HTTP/1.1\r\nX-A: a\x00b\r\n\r\n", "HTTP.BadHttpMessage"),
        (b"GET / HTTP/1.1\r\nX-A: a\rb\r\n\r\n", "HTTP.BadHttpMessage"),
        (b"GET / HTTP/1.1\r\nX-\xff: a\r\n\r\n", "HTTP.BadHttpMessage"),
        (b"get / HTTP/1.1\r\n\r\n", "HTTP.BadHttpMethod"),
        (b"FOO / HTTP/1.1\r\n\r\n", "HTTP.BadHttpMethod"),
        (bytes.fromhex("16030100c4010000c00303") + bytes(100), "HTTP.BadHttpMethod"),  # a TLS ClientHello
    ],
    ids=[
        "cl-and-te",
        "te-and-cl",
        "two-cl-differ",
        "two-cl-same",
        "cl-list",
        "cl-plus",
        "cl-negative",
        "cl-overflow",
        "te-chunked-identity",
        "te-chunked-twice",
        "te-xchunked",
        "te-gzip",
        "te-space-before-colon",
        "te-vtab",
        "obs-fold",
        "obs-fold-hides-te",
        "bare-lf",
        "bare-lf-in-head",
        "bare-cr",
        "space-before-colon",
        "leading-space",
        "empty-name",
        "chunk-not-hex",
        "chunk-size-overflow",
        "chunk-negative",
        "chunk-0x",
        "chunk-size-space",
        "chunk-ext-nul",
        "chunk-ext-bare-lf",
        "chunk-data-overrun",
        "h2-preface",
        "http-1.2",
        "http-3.0",
        "nul-in-target",
        "cr-in-target",
        "tab-in-target",
        "non-ascii-target",
        "nul-in-value",
        "cr-in-value",
        "non-ascii-name",
        "lowercase-method",
        "unknown-method",
        "tls-client-hello",
    ],
)
async def test_smuggling_and_malformed_framing_get_one_400_and_nothing_behind_them_is_answered(
    request_bytes: bytes, reason: str
) -> None:
    handler = Recorder()
    async with running_front(handler, limits=SMALL) as front:
        answers = split_answers(await exchange(front.port, request_bytes + SMUGGLED))  # read until the server closes
        assert [answer.status for answer in answers] == [400]
        assert answers[0].headers["connection"] == "close" and answers[0].headers["content-type"].startswith("text/")
        assert handler.requests == [] and front.refused(reason) == 1
        assert await served(front)


async def test_chunk_extensions_are_skipped_and_an_oversized_chunked_body_in_tiny_chunks_stops_at_the_limit() -> None:
    handler = Recorder()
    async with running_front(handler, limits=SMALL) as front:
        reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
        writer.write(
            b"POST /ext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b'2;name=value;x\r\nab\r\n1;y="q"\r\nc\r\n0\r\n\r\n'
        )
        assert (await read_answer(reader)).body == b"POST /ext 3"
        one_byte_chunks = b"1\r\nx\r\n" * 100_000  # 100 kB of body in 600 kB of framing, over a limit of 1 kB
        writer.write(b"POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + one_byte_chunks)
        answer = await read_answer(reader)
        assert (answer.body, answer.headers["connection"]) == (b"POST /big too-large", "close")
        assert await closed_or_reset(reader)
        assert handler.targets == ["/ext", "/big"] and handler.requests[1].body == b""
        writer.close()
        assert await served(front)


async def test_thousands_of_pipelined_requests_in_one_write_are_each_answered_once_in_order() -> None:
    count = 5000
    handler = Recorder()
    async with running_front(handler) as front:
        reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
        writer.write(b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % n for n in range(count)))
        writer.write(b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        async with asyncio.timeout(30):
            answers = split_answers(await reader.read())  # the last request closes the connection
        assert [answer.body for answer in answers] == [b"GET /%d 0" % n for n in range(count)] + [b"GET /last 0"]
        assert len(handler.requests) == count + 1
        writer.close()


async def test_a_pipelining_client_gets_a_bounded_number_of_requests_read_ahead_of_its_answers() -> None:
    count, release, pending_seen = 5000, asyncio.Event(), []

    async def handler(request: HttpRequest) -> HttpResponse:
        await release.wait()
        pending_seen.append(max(connection.pending for connection in front.front.connections))
        return HttpResponse.text(200, request.raw_path)

    async with running_front(handler) as front:
        reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
        requests = [b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % n for n in range(count)]
        writer.write(b"".join(requests))  # 150 kB: one or two reads of the server
        await writer.drain()
        writer.write_eof()  # half-closed: every request sent still gets its answer, then the close
        await condition(lambda: any(connection.reading_paused for connection in front.front.connections))
        release.set()
        async with asyncio.timeout(30):
            answers = split_answers(await reader.read())
        assert [answer.body for answer in answers] == [b"/%d" % n for n in range(count)]
        # was the whole read (~5,000 requests, ~3 MiB of request objects); now the limit and one parsed slice at most
        assert max(pending_seen) <= HttpLimits().max_pending + PARSE_SLICE // len(requests[0])
        writer.close()


async def trickle(writer: asyncio.StreamWriter, reader: asyncio.StreamReader, data: bytes, pace: float) -> None:
    """Send ``data`` a byte at a time (the attack's pace, not a synchronisation) until the server answers."""
    for byte in data:
        if reader.at_eof() or len(reader._buffer) > 0:  # answered: stop sending
            return
        writer.write(bytes([byte]))
        await asyncio.sleep(pace)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /slow HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 200 + b"\r\n\r\n",
        b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n" + b"a" * 200,
    ],
    ids=["head", "body"],
)
async def test_a_slowloris_head_or_body_gets_408_within_the_request_timeout_while_others_are_served(
    request_bytes: bytes,
) -> None:
    handler = Recorder()
    async with running_front(handler, limits=HttpLimits(request_timeout=0.5)) as front:
        reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
        started = asyncio.get_running_loop().time()
        sending = asyncio.create_task(trickle(writer, reader, request_bytes, 0.02))
        assert await served(front)  # while the slow client trickles
        answer = await asyncio.wait_for(read_answer(reader), 5)
        assert answer.status == 408 and await closed_or_reset(reader)  # reset: our next byte met a closed socket
        assert asyncio.get_running_loop().time() - started < 3  # bytes kept arriving: the timeout still fired
        await sending
        assert handler.targets == ["/other"] and front.refused("HTTP.RequestTimeout") == 1
        writer.close()


async def test_a_client_reset_mid_body_or_while_its_answer_is_computed_leaves_the_front_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def handler(request: HttpRequest) -> HttpResponse:
        if request.raw_path == "/held":
            entered.set()
            await asyncio.wait_for(release.wait(), 5)
        return HttpResponse.text(200, "x" * 1_000_000)  # an answer larger than the socket buffers

    caplog.set_level(logging.DEBUG)
    async with running_front(handler) as front:
        reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
        writer.write(b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"a" * 500)
        await writer.drain()
        reset(writer)  # mid-body
        reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
        writer.write(b"GET /held HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.wait_for(entered.wait(), 5)
        reset(writer)  # while the answer is being computed
        release.set()
        reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
        writer.write(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        await reader.readexactly(1000)
        reset(writer)  # mid-answer
        await condition(lambda: not front.front.connections)  # every connection forgotten
        assert await served(front)
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING or record.exc_info]


@pytest.mark.parametrize(
    ("request_line", "target"),
    [
        (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443", "example.com:443"),
        (b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade", "/ws"),
        (
            b"GET /h2 HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AA",
            "/h2",
        ),
        (b"GET /closing HTTP/1.1\r\nHost: x\r\nConnection: close", "/closing"),
        (b"GET /old HTTP/1.0\r\nHost: x", "/old"),
    ],
    ids=["connect", "websocket", "h2c", "connection-close", "http10"],
)
async def test_a_tunnel_protocol_switch_or_last_request_is_answered_once_then_closed_and_nothing_after_it_read(
    request_line: bytes, target: str
) -> None:
    handler = Recorder()
    async with running_front(handler) as front:
        answers = split_answers(await exchange(front.port, request_line + b"\r\n\r\n" + SMUGGLED))
        assert [(answer.status, answer.headers["connection"]) for answer in answers] == [(200, "close")]
        assert handler.targets == [target]  # the handler decides (the server's routes refuse these)


async def test_odd_targets_and_an_upgrade_without_connection_upgrade_are_plain_requests() -> None:
    handler = Recorder()
    async with running_front(handler) as front:
        reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
        writer.write(
            b"GET http://evil.example/healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"
            b"\r\nGET /after-crlf HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        bodies = [(await read_answer(reader)).body for _ in range(4)]
        assert bodies == [b"GET http://evil.example/healthz 0", b"OPTIONS * 0", b"GET /ws 0", b"GET /after-crlf 0"]
        writer.close()


async def test_non_utf8_header_values_reach_the_handler_escaped_never_decoded_into_other_characters() -> None:
    handler = Recorder()
    async with running_front(handler) as front:
        answers = split_answers(
            await exchange(front.port, b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\xff\xc3\xa9\r\nConnection: close\r\n\r\n")
        )
        assert [answer.status for answer in answers] == [200]
        assert handler.requests[0].headers["X-A"] == "a\udcff\u00e9"  # é decoded; the stray byte kept as a surrogate


async def test_head_with_a_body_answers_the_length_only_and_the_next_request_is_read_after_the_body() -> None:
    handler = Recorder()
    async with running_front(handler) as front:
        reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
        writer.write(
            b"HEAD /h HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLED)
            + SMUGGLED
            + b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        head = await read_answer(reader, head_request=True)
        assert head.headers["content-length"] == str(len(b"HEAD /h %d" % len(SMUGGLED)))
        assert (await read_answer(reader)).body == b"GET /next 0"  # the body was a body, not a request
        assert handler.targets == ["/h", "/next"]
        writer.close()


@pytest.mark.parametrize(
    ("header", "status", "reason"),
    [
        (b"a" * 8191 + b": x\r\n", 431, "HTTP.LineTooLong"),
        (b"".join(b"X-%d: 1\r\n" % n for n in range(5000)), 431, "HTTP.TooManyHeaders"),
        (b"".join(b"X-%d: %s\r\n" % (n, b"v" * 8000) for n in range(20)), 431, "HTTP.HeadersTooLarge"),
    ],
    ids=["name-8191", "5000-headers", "160kB-head"],
)
async def test_oversized_header_names_counts_and_heads_get_431(header: bytes, status: int, reason: str) -> None:
    handler = Recorder()
    async with running_front(handler) as front:
        answers = split_answers(await exchange(front.port, b"GET / HTTP/1.1\r\n" + header + b"\r\n" + SMUGGLED))
        assert [answer.status for answer in answers] == [status] and front.refused(reason) == 1
        assert handler.requests == []
        reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n" + b"a" * 8189 + b":x\r\n\r\n")  # name and value at the limit
        assert (await read_answer(reader)).status == 200
        writer.close()


async def test_plaintext_to_the_tls_front_is_dropped_silently_and_tls_clients_are_still_served(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server_tls, client_tls = tls_contexts(tmp_path)
    handler = Recorder()
    caplog.set_level(logging.INFO)
    async with running_front(handler, tls=server_tls) as front:
        received = await exchange(front.port, b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
        assert not received.startswith(b"HTTP/")  # a TLS alert at most, never an answer in the clear
        reader, writer = await asyncio.open_connection("127.0.0.1", front.port, ssl=client_tls)
        writer.write(b"GET /tls HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await read_answer(reader)).body == b"GET /tls 0"
        writer.close()
        assert handler.targets == ["/tls"]
    assert not [record for record in caplog.records if record.levelno >= logging.WARNING or record.exc_info]


async def test_hundreds_of_silent_connections_do_not_stop_the_front_serving_others() -> None:
    handler = Recorder()
    async with running_front(handler) as front:
        silent = [await asyncio.open_connection("127.0.0.1", front.port) for _ in range(300)]
        half_heads = silent[:100]
        for _, writer in half_heads:
            writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")  # and a hundred stuck mid-body
        assert await served(front)
        assert len(front.front.connections) >= 300  # all still open (the one served may not be forgotten yet)
        for _, writer in silent:
            writer.close()


async def test_expect_continue_is_not_sent_for_an_over_limit_body_nor_while_answers_are_pending() -> None:
    handler = Recorder()
    async with running_front(handler, limits=SMALL) as front:
        reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
        writer.write(b"POST /e HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n")
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"401\r\n" + b"x" * 1025 + b"\r\n")  # chunked past the limit after the 100
        answer = await read_answer(reader)
        assert answer.body == b"POST /e too-large" and await closed_by_server(reader)
        writer.close()
        received = await exchange(
            front.port, b"POST /big HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1025\r\n\r\n"
        )
        assert [answer.body for answer in split_answers(received)] == [b"POST /big too-large"]  # no 100 before it


# ---------------------------------------------------------------------------- the real server


def tracebacks(server: KMSServer) -> int:
    return server.log.read_text().count("Traceback")


async def test_the_real_server_refuses_smuggling_and_odd_requests_with_4xx_never_5xx(server: KMSServer) -> None:
    attacks = [
        b"POST / HTTP/1.1\r\nHost: x\r\n" + CL_TE + b"\r\n0\r\n\r\n" + SMUGGLED,
        b"POST /v1.0/proj1/kms/list-keys HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        b"GET /healthz HTTP/1.1\r\nX-A: one\r\n two\r\n\r\n",
        b"GET /healthz HTTP/1.1\nHost: x\n\n",
        b"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        bytes.fromhex("16030100c4010000c00303") + bytes(100),
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n" + SMUGGLED,
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n" + SMUGGLED,
        b"GET http://evil.example/healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /%ZZ?%ZZ=%ZZ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"POST /% HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        b"POST /?%ff=%fe HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        b"GET /v1.0/%ff%fe/kms/%00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"POST /v1.0/proj1/kms/list-keys HTTP/1.1\r\nHost: \xff\r\nContent-Type: \xff\xfe\r\n"
        b"Authorization: SDK-HMAC-SHA256 Access=\xff, SignedHeaders=host, Signature=00\r\n"
        b"Content-Length: 2\r\nConnection: close\r\n\r\n{}",
        b"POST / HTTP/1.1\r\nHost: \xff\r\nX-Amz-Target: TrentService.ListKeys\r\nX-Amz-Date: \xff\r\n"
        b"Authorization: AWS4-HMAC-SHA256 Credential=\xff/20260101/us-east-1/kms/aws4_request, "
        b"SignedHeaders=host, Signature=00\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + b"a" * 8191 + b": x\r\n\r\n",
        b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % n for n in range(1000)) + b"\r\n",
    ]
    before = tracebacks(server)
    for attack in attacks:
        answers = split_answers(await exchange(server.port, attack))
        assert len(answers) == 1 and 400 <= answers[0].status < 500, (attack[:80], answers)
        assert b"smuggled" not in answers[0].body
        assert set(answers[0].headers) <= {
            "content-type",
            "content-length",
            "date",
            "connection",
            "x-request-id",
            "x-amzn-requestid",
        }, answers[0].headers
        for name in ("x-request-id", "x-amzn-requestid"):  # the server's own ids, never a client's text
            assert re.fullmatch("[0-9a-f]{32}|[0-9a-f-]{36}", answers[0].headers.get(name, "0" * 32))
    received = await exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert split_answers(received)[0].body == b"ok"
    assert tracebacks(server) == before


async def test_the_real_server_refuses_an_over_limit_body_413_without_100_continue(server: KMSServer) -> None:
    for framing in (
        b"Expect: 100-continue\r\nContent-Length: 99999999\r\n\r\n",
        b"Transfer-Encoding: chunked\r\n\r\n" + b"1\r\nx\r\n" * 70_000,
    ):
        received = await exchange(server.port, b"POST /v1.0/proj1/kms/list-keys HTTP/1.1\r\nHost: x\r\n" + framing)
        answers = split_answers(received)
        assert [(answer.status, answer.headers["connection"]) for answer in answers] == [(413, "close")]
        assert b"KMS.0203" in answers[0].body


async def test_the_real_server_keeps_the_console_hand_off_in_order_and_refuses_smuggling_through_it(
    server: KMSServer,
) -> None:
    before = tracebacks(server)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(
        b"GET /console/sign-in HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        b"HEAD /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
        % len(SMUGGLED)
        + SMUGGLED
        + b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    page = await read_answer(reader)
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    assert (await read_answer(reader)).body == b"ok"
    assert (await read_answer(reader, head_request=True)).status == 200
    assert (await read_answer(reader)).status == 400 and await closed_by_server(reader)  # /nowhere; nothing smuggled
    writer.close()
    inner = b"0\r\n\r\n" + SMUGGLED  # a chunked body that is a request if read as the end of the body
    received = await exchange(
        server.port,
        b"POST /console/sign-in HTTP/1.1\r\nHost: x\r\n"
        b"Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n" % len(inner)
        + inner
        + b"\r\n0\r\n\r\n",
    )
    answers = split_answers(received)
    assert [answer.status for answer in answers] == [400] and b"smuggled" not in answers[0].body
    assert tracebacks(server) == before


async def test_the_real_server_answers_a_flood_of_pipelined_requests_in_order_beside_silent_connections(
    server: KMSServer,
) -> None:
    silent = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(200)]
    paths = [b"/healthz" if n % 3 else b"/nowhere-%d" % n for n in range(3000)]
    requests = b"".join(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path for path in paths)
    received = await exchange(
        server.port, requests + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", within=30
    )
    statuses = [answer.status for answer in split_answers(received)]
    assert statuses == [200 if path == b"/healthz" else 400 for path in paths] + [200]
    for _, writer in silent:
        writer.close()


async def test_a_half_closed_client_still_gets_its_answer_then_the_close() -> None:
    release = asyncio.Event()

    async def slow(request: HttpRequest) -> HttpResponse:
        await release.wait()
        return HttpResponse.text(200, f"answered {request.raw_path}")

    async with running_front(slow) as front:
        reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
        writer.write(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        writer.write_eof()  # the client has said everything: shutdown(SHUT_WR)
        # the front has read the end of input while the answer is pending (its private flag: nothing public shows it)
        await condition(lambda: any(connection._stopping for connection in front.front.connections))
        release.set()
        async with asyncio.timeout(5):
            answers = split_answers(await reader.read())  # EOF after the last answer
        assert [answer.body for answer in answers] == [b"answered /first"]
        assert answers[-1].headers["connection"] == "close"
        writer.close()


async def test_blank_lines_do_not_keep_an_idle_connection_open_past_the_keep_alive_timeout() -> None:
    async with running_front(Recorder(), limits=HttpLimits(keepalive_timeout=0.3)) as front:
        reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
        writer.write(b"\r\n")  # llhttp skips it: no request begins, so the idle timer must keep running
        assert await closed_or_reset(reader, within=3)
        writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
        writer.write(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await asyncio.wait_for(read_answer(reader), 5)).status == 200
        writer.write(b"\r\n")  # after an answer, the same
        assert await closed_or_reset(reader, within=3)
        writer.close()


CHUNKED_HEAD = b"POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n"


async def test_trailer_fields_never_become_request_headers() -> None:
    handler = Recorder()
    async with running_front(handler) as front:
        received = await exchange(front.port, CHUNKED_HEAD + b"0\r\nX-Amz-Target: TrentService.Evil\r\n\r\n")
        assert [answer.status for answer in split_answers(received)] == [200]
        assert len(handler.requests) == 1 and "X-Amz-Target" not in handler.requests[0].headers
        assert handler.requests[0].body == b"{}"


async def test_a_never_ending_trailer_is_refused_at_the_head_limit_while_others_are_served() -> None:
    handler = Recorder()
    limits = HttpLimits(max_head_bytes=16 * 1024)
    async with running_front(handler, limits=limits) as front:
        reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
        writer.write(CHUNKED_HEAD + b"0\r\nX-T: ")
        for _ in range(64):  # 64 KiB of one trailer value, 1 KiB a write: refused once past 16 KiB
            if reader.at_eof() or len(reader._buffer) > 0:
                break
            writer.write(b"a" * 1024)
            await writer.drain()
        answer = await asyncio.wait_for(read_answer(reader), 5)
        assert answer.status == 431 and front.refused("HTTP.HeadersTooLarge") == 1
        assert await served(front) and handler.targets == ["/other"]
        writer.close()


async def test_a_head_within_the_limit_is_accepted_however_it_is_split_over_reads() -> None:
    handler = Recorder()
    async with running_front(handler, limits=HttpLimits(max_head_bytes=64 * 1024)) as front:
        reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
        head = b"GET /big HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-F%d: %s\r\n" % (n, b"v" * 1000) for n in range(40))
        for offset in range(0, len(head), 1024):  # 40 kB in 1 kB writes: each byte counted once
            writer.write(head[offset : offset + 1024])
            await writer.drain()
            await condition(lambda: not reader.at_eof(), within=1)
        writer.write(b"\r\n")
        answer = await asyncio.wait_for(read_answer(reader), 5)
        assert answer.status == 200 and handler.targets == ["/big"]
        writer.close()


async def test_a_malformed_request_behind_a_console_request_closes_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from aiohttp import web

    async def page(request: web.BaseRequest) -> web.Response:
        return web.Response(text="console")

    console = web.Server(page)
    async with running_front(Recorder(), handoff=console) as front:
        received = await exchange(
            front.port, b"GET /console/ HTTP/1.1\r\nHost: x\r\n\r\nGET /x HTTP/1.1\r\nBad Line\r\n\r\n"
        )
        assert received == b""  # the stream given to aiohttp is broken: cut, nothing half-answered
        assert front.refused("HTTP.BadHttpMessage") == 1
        assert await served(front)
    await console.shutdown()
    assert not [record for record in caplog.records if record.exc_info or "never retrieved" in record.getMessage()]


async def test_console_bytes_waiting_behind_a_slow_answer_pause_reading() -> None:
    from aiohttp import web

    release = asyncio.Event()

    async def slow(request: HttpRequest) -> HttpResponse:
        await release.wait()
        return HttpResponse.text(200, "slow")

    async def page(request: web.BaseRequest) -> web.Response:
        return web.Response(text="console")

    console = web.Server(page)
    async with running_front(slow, handoff=console) as front:
        reader, writer = await asyncio.open_connection("127.0.0.1", front.port)
        writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nPOST /console/x HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Length: 9000000000\r\n\r\n")  # fmt: skip
        await condition(lambda: any(connection.reading_paused for connection in front.front.connections))
        for _ in range(64):  # 64 MiB offered: the front holds little of it, the rest waits in the sockets
            writer.write(bytes(1024 * 1024))
            if writer.transport.get_write_buffer_size() > 16 * 1024 * 1024:
                break
        assert writer.transport.get_write_buffer_size() > 16 * 1024 * 1024  # the front stopped reading
        release.set()
        assert (await asyncio.wait_for(read_answer(reader), 5)).body == b"slow"
        reset(writer)
    await console.shutdown()


@pytest.mark.parametrize(
    "framing", [b"Content-Length: 2\r\n\r\n{}", b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"]
)
async def test_an_upgrade_request_with_a_body_is_refused_never_answered_as_if_it_had_none(framing: bytes) -> None:
    handler = Recorder()
    async with running_front(handler) as front:
        received = await exchange(
            front.port, b"POST /u HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n" + framing
        )
        assert [answer.status for answer in split_answers(received)] == [400]
        assert handler.requests == [] and front.refused("HTTP.BadHttpMessage") == 1


@pytest.mark.parametrize(
    ("request_bytes", "status", "reason"),
    [
        (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, "HTTP.VersionNotSupported"),
        (b"GET /\r\n\r\n", 505, "HTTP.VersionNotSupported"),  # HTTP/0.9: no version, no headers
        (b"GET / HTTP/1.1\r\n\r\n", 400, "HTTP.BadHttpMessage"),  # no Host
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "HTTP.BadHttpMessage"),
    ],
    ids=["http2-line", "http09", "no-host", "two-hosts"],
)
async def test_other_http_versions_get_505_and_http11_needs_exactly_one_host(
    request_bytes: bytes, status: int, reason: str
) -> None:
    handler = Recorder()
    async with running_front(handler) as front:
        answers = split_answers(await exchange(front.port, request_bytes + SMUGGLED))
        assert [answer.status for answer in answers] == [status] and handler.requests == []
        assert front.refused(reason) == 1
        assert (await exchange(front.port, b"GET /old HTTP/1.0\r\n\r\n")).startswith(b"HTTP/1.1 200")  # 1.0: no Host


async def test_an_http10_client_gets_no_100_continue() -> None:
    async with running_front(Recorder()) as front:
        received = await exchange(
            front.port, b"POST /p HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}", within=5
        )
        assert received.startswith(b"HTTP/1.1 200") and b"100 Continue" not in received
