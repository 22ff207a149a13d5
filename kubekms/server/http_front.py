"""The server's HTTP/1.x front: an asyncio protocol on httptools (llhttp), leaner than aiohttp on our path.

Measured (``bench/http_layer_bench.py``, four runs): 0.58-0.81x aiohttp's server CPU per AWS-wire
Decrypt (mostly 0.65-0.75x), 0.52-0.67x per ``/healthz``.

One :class:`HttpConnection` per client connection parses requests (keep-alive, ``Connection:
close``, HTTP/1.0, chunked bodies, pipelined requests answered in order, ``Expect:
100-continue``, HEAD) and hands each whole request to the server's handler. Limits: the target
and each header field at most 8190 bytes (as aiohttp), a bounded number of headers and head
bytes, the body at most ``max_body_bytes`` (larger: the request reaches the handler marked
``body_too_large``, unread, and the connection closes after the answer); a request must arrive
within ``request_timeout`` of its first byte (slowloris), an idle connection closes after
``keepalive_timeout``. At most ``max_connections`` connections are open at once (the config's
``max_connections``, per worker): one beyond is closed at once (a reset, nothing read from it),
counted and logged as a refusal (``HTTP.TooManyConnections``, one rate-limited line per client),
so a client opening connections cannot take the descriptors the process needs for its keystores,
log and the connections it already serves; a connection handed to the console counts until it ends, a TLS
connection from its accept (its handshake included: up to 60 s, the loops' ``ssl_handshake_timeout``).
Malformed HTTP is answered 400 with a plain reason and closed, and
counted as a refusal (one rate-limited line per client). Reading pauses while answers are
pending or the transport's buffer is full, and a pipelining client gets at most ``max_pending``
requests parsed ahead of their answers (plus what one 4 KiB slice holds): the rest of a read waits
unparsed until answers go out. While the transport's buffer is full (the client reads no answers), nothing
more is parsed: parsing resumes, in order, when writing does.

Requests are answered eagerly: once a read is parsed, the answering loop runs at once, in the
read's callback, and becomes a task only if the handler waits for something (a keystore write in
a thread). The wires' requests served from the keystore's cache never wait, so they skip a task
and a turn of the event loop each (~1.4 µs, 16 % of a ``/healthz``, 4-10 % of a data-key
request in ``bench/http_layer_bench.py --in-process``), as Python 3.12's eager tasks would. Until
it waits, a handler runs without a current task: what needs one (``asyncio.timeout``) runs in a
task of its own.

A request whose target starts with the ``handoff_prefix`` (the web console, still on aiohttp)
gives its connection to the aiohttp protocol made by ``handoff``: that request and everything
after it on the connection are replayed to aiohttp as parsed (httptools tells no byte offsets),
and once the parser rests between two requests the transport is handed over for good.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import functools
import logging
import socket
from collections.abc import Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass, field
from ssl import SSLContext
from typing import Any, Generic, TypeVar, cast

import httptools
from multidict import CIMultiDict, CIMultiDictProxy, istr

from kubekms.server.http_handoff import Relay
from kubekms.server.http_messages import HttpRequest, HttpResponse, encode_response
from kubekms.server.logs import RefusalLog

log = logging.getLogger("kubekms.server")

Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
PARSE_SLICE = 4096  # bytes parsed at a time: the pipelining bound is checked between slices
HEADER_NAMES_KEPT = 256  # header names as sent, decoded once (as istr: CIMultiDict takes them in 0.6x the time)
_header_names: dict[bytes, istr] = {}


def _header_name(name: bytes) -> str:
    """A header name decoded, from the names decoded before while at most HEADER_NAMES_KEPT were (any client sends
    names of its choosing: the rest is decoded on each request)."""
    known = _header_names.get(name)
    if known is not None:
        return known
    if len(_header_names) >= HEADER_NAMES_KEPT:
        return name.decode("latin-1")
    decoded = _header_names[name] = istr(name.decode("latin-1"))
    return decoded


@dataclass(frozen=True)
class HttpLimits:
    max_target_bytes: int = 8190  # the request target (aiohttp's max_line_size)
    max_field_bytes: int = 8190  # one header: name and value
    max_headers: int = 128
    max_head_bytes: int = 64 * 1024  # target and headers together
    max_body_bytes: int = 64 * 1024
    max_pending: int = 16  # requests read ahead of their answers on one connection (pipelining); then reading stops
    request_timeout: float = 30.0  # from a request's first byte to its last
    keepalive_timeout: float = 75.0  # an idle connection (aiohttp's default)
    max_connections: int = 1024  # open at once; one more is closed at once (the config's default: from RLIMIT_NOFILE)


class _Refusal(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message


class _StopParsing(Exception):
    """Raised from a parser callback: the rest of the connection's input is not read."""


@dataclass(slots=True)
class _Pending:
    request: HttpRequest | None  # None: ``response`` is already known (a refusal)
    response: HttpResponse | None
    keep_alive: bool
    http10: bool = False
    head: bool = False


@dataclass
class HttpFront:
    """The protocol factory, its listener and its connections (for a graceful stop)."""

    handler: Handler
    refusals: RefusalLog
    limits: HttpLimits = HttpLimits()
    extra_headers: dict[str, str] = field(default_factory=dict)  # on every answer (the pid); set before serving
    handoff: Callable[[], asyncio.Protocol] | None = None  # aiohttp's protocol factory (web.Server)
    handoff_prefix: str = "/console"
    connections: set[HttpConnection] = field(default_factory=set)  # the front's own (a graceful stop waits for them)
    open_connections: int = 0  # accepted and not ended, the console's included: max_connections applies to these
    _server: asyncio.Server | None = None
    _handshakes: set[asyncio.Task[None]] = field(default_factory=set)  # TLS connections in their handshake
    _stopping: bool = False
    _all_closed: asyncio.Event = field(default_factory=asyncio.Event)
    _extra_lines: str | None = None  # extra_headers as header lines, formatted once

    def __call__(self) -> HttpConnection:
        return HttpConnection(self)

    def encode(self, response: HttpResponse, connection: str | None, head: bool) -> bytes:
        if self._extra_lines is None:
            self._extra_lines = "".join(f"{name}: {value}\r\n" for name, value in self.extra_headers.items())
        return encode_response(response, self._extra_lines, connection, head)

    async def listen(self, *, host: str | None = None, port: int = 0, sock: socket.socket | None = None,
                     ssl: SSLContext | None = None) -> asyncio.Server:  # fmt: skip
        """Accept on ``host``:``port``, or on ``sock`` (a worker's inherited listener)."""
        loop = asyncio.get_running_loop()
        factory: Callable[[], asyncio.Protocol] = self if ssl is None else functools.partial(_TlsAccept, self, ssl)
        if sock is not None:
            self._server = await loop.create_server(factory, sock=sock, backlog=1024)
        else:
            self._server = await loop.create_server(factory, host, port, backlog=1024)
        return self._server

    def forget(self, connection: HttpConnection) -> None:
        self.connections.discard(connection)
        self.check_settled()

    def refuse_connection(self, transport: asyncio.Transport, client: str | None) -> None:
        """One connection beyond ``max_connections``: closed at once, nothing read from it."""
        self.refusals.refused(client=client or "-", wire="http", reason="HTTP.TooManyConnections", status=503,
                              operation="-", request_id="-")  # fmt: skip
        transport.abort()

    def check_settled(self) -> None:
        """Wake :meth:`stop` once no connection has a request to answer (closing ones may wait for TLS)."""
        if self._stopping and all(connection.settled for connection in self.connections):  # a look at every one:
            self._all_closed.set()  # only while a stop waits

    async def stop(self, grace: float = 30.0) -> None:
        """Stop accepting, let every connection finish the requests it has, close the rest after ``grace``."""
        if self._server is not None:
            self._server.close()
        self._stopping = True
        self._all_closed.clear()
        for handshake in list(self._handshakes):  # nothing asked yet: closed (start_tls closes the transport)
            handshake.cancel()
        for connection in list(self.connections):
            connection.shutdown()
        self.check_settled()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_closed.wait(), grace)
        for connection in list(self.connections):  # a TLS close_notify the client never answers need not hold us
            connection.abort()


class HttpConnection(asyncio.Protocol):
    def __init__(self, front: HttpFront) -> None:
        self._front = front
        self._limits = limits = front.limits
        self._max_field_bytes, self._max_headers, self._max_head_bytes = (
            limits.max_field_bytes, limits.max_headers, limits.max_head_bytes)  # fmt: skip
        self._handoff_prefix = front.handoff_prefix.encode()
        self._version = "1.1"  # the HTTP version of the request being parsed, once its head is
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._remote: str | None = None
        self._queue: collections.deque[_Pending] = collections.deque()
        self._unparsed = b""  # read but not parsed yet: max_pending answers are pending
        self._serving: object = None  # the answering loop runs: _EAGERLY, or its task once it waited
        self._parsing = False  # in httptools' feed_data: answers start after it returns (it is not re-entrant)
        self._timer: asyncio.TimerHandle | None = None  # fires at _timer_at, at or before _deadline
        self._timer_at = self._deadline = 0.0
        self._on_deadline: Callable[[], None] | None = None
        self._in_message = self._in_head = self._answered_here = False
        self._discarding = self._stopping = False
        self._reading_paused = self._writing_paused = False
        self._continue_wanted = False
        self._relay: Relay | None = None  # this connection goes to aiohttp (the console)
        self._counted = False  # in the front's open_connections until the connection ends
        self._reset_message()

    def _reset_message(self) -> None:
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_bytes = 0  # header fields as parsed
        self._read_head_bytes = 0  # bytes read while the head or the trailer section was unfinished
        self._in_trailers = False  # after a chunk header and before its data: maybe the last chunk's trailers
        self._body: list[bytes] = []
        self._body_bytes = 0
        self._fields: CIMultiDict[str] = CIMultiDict()  # the head's fields, decoded as they come

    # ------------------------------------------------------------------ transport events

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        if not self._counted and not self._admit(stream):  # (a TLS connection was counted at its accept)
            return
        self._transport = stream
        self._front.connections.add(self)
        self._set_timer(self._limits.keepalive_timeout, self._idle_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._release()
        self._front.forget(self)
        self._stop_timer()
        self._transport = None
        self._unparsed = b""
        if self._relay is not None and self._relay.connected:
            self._relay.protocol.connection_lost(exc)

    def _admit(self, transport: asyncio.Transport) -> bool:
        """Count this connection in the front's open_connections, or refuse it (closed at once) over the cap."""
        peer = transport.get_extra_info("peername")
        self._remote = str(peer[0]) if isinstance(peer, tuple) and peer else None
        if self._front.open_connections >= self._limits.max_connections:
            self._front.refuse_connection(transport, self._remote)
            return False
        self._front.open_connections += 1
        self._counted = True
        return True

    def _release(self) -> None:
        """The connection ended (its transport here, or aiohttp's after the hand-over): no longer counted."""
        if self._counted:
            self._counted = False
            self._front.open_connections -= 1

    def pause_writing(self) -> None:
        self._writing_paused = True
        self._pause_reading()
        if self._relay is not None and self._relay.connected:
            self._relay.protocol.pause_writing()

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._unparsed and self._serving is None and self._transport is not None:  # parsing stopped for it
            data, self._unparsed = self._unparsed, b""
            self._feed(data)
        self._maybe_resume_reading()
        if self._relay is not None and self._relay.connected:
            self._relay.protocol.resume_writing()

    def data_received(self, data: bytes) -> None:
        if self._discarding or self._transport is None:
            return
        if self._unparsed:  # reading is paused while bytes wait; keep what a transport still delivers behind them
            self._unparsed += data
            return
        self._feed(data)

    def _feed(self, data: bytes) -> None:
        """Parse ``data`` a slice at a time; once ``max_pending`` requests wait for answers, keep the rest unparsed.

        A slice holds at most ``PARSE_SLICE`` bytes, so at most that many bytes' worth of requests (a minimal one
        is 18 bytes) join the pending ones beyond the limit; reading resumes once the kept bytes are parsed.
        """
        if len(data) <= PARSE_SLICE:
            self._parse(data)
        else:
            view = memoryview(data)
            for start in range(0, len(data), PARSE_SLICE):
                if len(self._queue) >= self._limits.max_pending:
                    self._unparsed = bytes(view[start:])
                    break
                self._parse(view[start : start + PARSE_SLICE])
                if self._discarding or self._transport is None:
                    break
        if self._queue and self._serving is None:
            self._start_serving()
        if self._relay is not None:
            self._flush_relay()
            if not self._relay.connected:  # held until our answers before it are written: read no more meanwhile
                self._pause_reading()
        if len(self._queue) > 1 or self._unparsed:
            self._pause_reading()

    def _parse(self, data: bytes | memoryview) -> None:
        self._answered_here = False  # a request completed in this slice: its bytes are not the head's
        was_in_trailers = self._in_trailers
        self._parsing = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # Upgrade (h2c, websocket) is not offered: answer, then close
            upgrading = self._queue[-1].request if self._queue else None
            if upgrading is not None and _declares_body(upgrading):  # llhttp stops before the body: never guess it
                self._queue.pop()  # enqueued by this very read: not being served yet
                self._refuse(400, "HTTP.BadHttpMessage", "a request asking for a protocol upgrade may not carry a body")
            elif self._queue:
                self._queue[-1].keep_alive = False
            self._discarding = True
            self._unparsed = b""
        except httptools.HttpParserCallbackError as error:
            cause = error.__context__
            if isinstance(cause, _Refusal):
                self._refuse(cause.status, cause.reason, cause.message)
            elif not isinstance(cause, _StopParsing):
                raise
        except httptools.HttpParserError as error:
            reason = "HTTP.BadHttpMethod" if isinstance(error, httptools.HttpParserInvalidMethodError) else (
                "HTTP.BadHttpMessage")  # fmt: skip
            self._refuse(400, reason, f"malformed HTTP request ({error})")
        finally:
            self._parsing = False
        in_trailers = was_in_trailers and self._in_trailers  # this slice was trailer bytes only
        if (self._in_head or in_trailers) and not self._answered_here and not self._discarding:
            self._read_head_bytes += len(data)  # a head split over reads: what httptools holds for us is bounded too
            if self._read_head_bytes > self._limits.max_head_bytes:
                self._refuse(431, "HTTP.HeadersTooLarge", "request head too large")

    def eof_received(self) -> bool | None:
        if self._relay is not None and self._relay.connected:
            return self._relay.protocol.eof_received()
        tls = self._transport is not None and self._transport.get_extra_info("sslcontext") is not None
        if (self._queue or self._serving is not None) and not tls:
            self._stopping = True  # a half-closed client still gets the answers to what it sent, then the close
            return True  # keep our side open (asyncio ignores this on TLS, where a client's close_notify ends it)
        return None

    # ------------------------------------------------------------------ parser callbacks

    def on_message_begin(self) -> None:
        self._in_message = self._in_head = True
        self._reset_message()
        if self._relay is None:
            self._set_timer(self._limits.request_timeout, self._request_timeout)

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self._limits.max_target_bytes:
            raise _Refusal(414, "HTTP.LineTooLong", f"request target longer than {self._limits.max_target_bytes} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        size = len(name) + len(value)
        self._head_bytes += size
        if not self._in_head:  # a trailer field of a chunked body: counted, never taken for a request header
            if self._head_bytes > self._limits.max_head_bytes:
                raise _Refusal(431, "HTTP.HeadersTooLarge", "request trailer section too large")
            return
        if size > self._max_field_bytes:
            raise _Refusal(431, "HTTP.LineTooLong", f"header field longer than {self._max_field_bytes} bytes")
        headers = self._headers
        headers.append((name, value))
        if len(headers) > self._max_headers or self._head_bytes > self._max_head_bytes:
            if len(headers) > self._max_headers:
                raise _Refusal(431, "HTTP.TooManyHeaders", f"more than {self._max_headers} header fields")
            raise _Refusal(431, "HTTP.HeadersTooLarge", "request head too large")
        # added here, not built from the list once the head is complete: 0.85 -> 0.69 µs for an SDK's 8 fields
        self._fields.add(_header_names.get(name) or _header_name(name), value.decode("utf-8", "surrogateescape"))

    def on_headers_complete(self) -> None:
        self._in_head = False
        fields = self._fields
        version = self._version = self._parser.get_http_version()
        self._check_version_and_host(version, fields)
        if self._relay is not None or (self._front.handoff is not None and self._url.startswith(self._handoff_prefix)):
            if self._relay is None:
                assert self._front.handoff is not None
                self._relay = Relay(self._front.handoff())
                self._stop_timer()  # aiohttp keeps its own time from here
            self._relay.head(self._parser.get_method(), self._url, version, self._headers)
            return
        declared = fields.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self._limits.max_body_bytes:
            self._enqueue_too_large()
            raise _StopParsing
        expect = fields.get("expect")
        if expect is not None and expect.lower() == "100-continue" and version == "1.1":
            if self._queue or self._serving is not None:
                self._continue_wanted = True  # after the answers before it
            elif self._transport is not None:
                self._transport.write(CONTINUE)

    def on_chunk_header(self) -> None:
        self._in_trailers = True  # until data follows: a last chunk's trailer section comes next

    def on_chunk_complete(self) -> None:
        self._in_trailers = False

    @staticmethod
    def _check_version_and_host(version: str, fields: CIMultiDict[str]) -> None:
        """HTTP/1.0 and 1.1 only (505); an HTTP/1.1 request names exactly one Host (RFC 9112 3.2; its value is the
        wires' to judge: a SigV4 signature covers it)."""
        if version not in ("1.0", "1.1"):
            raise _Refusal(505, "HTTP.VersionNotSupported", f"HTTP/{version[:8]} is not supported: use HTTP/1.1")
        if version == "1.1" and len(fields.getall("host", ())) != 1:
            raise _Refusal(400, "HTTP.BadHttpMessage", "an HTTP/1.1 request needs exactly one Host header")

    def on_body(self, body: bytes) -> None:
        self._in_trailers = False
        if self._relay is not None:
            self._relay.body(body)
            return
        self._body_bytes += len(body)
        if self._body_bytes > self._limits.max_body_bytes:  # chunked: stop at the limit
            self._enqueue_too_large()
            raise _StopParsing
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._in_message = self._continue_wanted = False
        self._answered_here = True
        if self._relay is not None:
            self._relay.complete()
            return
        self._on_deadline = None
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        request = self._request(body, too_large=False)
        http10 = self._version == "1.0"
        self._enqueue(_Pending(request, None, self._parser.should_keep_alive(), http10, request.method == "HEAD"))

    # ------------------------------------------------------------------ requests and answers

    def _request(self, body: bytes, *, too_large: bool) -> HttpRequest:
        return HttpRequest(self._parser.get_method().decode("ascii"), self._url.decode("latin-1"),
                           CIMultiDictProxy(self._fields), body, self._remote, too_large)  # fmt: skip

    def _enqueue_too_large(self) -> None:
        """The wire refuses it (413, its error body, audited); the rest of the body is never read."""
        self._on_deadline = None
        self._discarding = True
        self._unparsed = b""
        self._enqueue(_Pending(self._request(b"", too_large=True), None, keep_alive=False))

    def _refuse(self, status: int, reason: str, message: str) -> None:
        self._front.refusals.refused(client=self._remote or "-", wire="http", reason=reason, status=status,
                                     operation="-", request_id="-")  # fmt: skip
        self._discarding = True
        self._unparsed = b""
        self._on_deadline = None
        if self._relay is not None:  # the stream given to aiohttp is broken: nothing sensible to answer
            self.abort()
            return
        self._enqueue(_Pending(None, HttpResponse.text(status, message), keep_alive=False))

    def _enqueue(self, pending: _Pending) -> None:
        self._queue.append(pending)
        if self._serving is None and not self._parsing:
            self._start_serving()

    def _start_serving(self) -> None:
        """Run the answering loop now; if it waits, a task (in the same context) carries it on from there."""
        context = contextvars.copy_context()  # what a task gets: the request's context variables stay its own
        serving = self._serve()
        self._serving = _EAGERLY
        try:
            waiting_on = context.run(serving.send, None)
        except StopIteration:
            return  # answered without waiting (_serve has reset _serving)
        self._serving = self._loop.create_task(_carry_on(serving, waiting_on), context=context)

    async def _serve(self) -> None:
        while self._queue:
            pending = self._queue[0]
            response = pending.response
            if response is None:
                assert pending.request is not None
                try:
                    response = await self._front.handler(pending.request)
                except asyncio.CancelledError:  # (the loop shuts down) unanswered: the connection ends, not hangs
                    self._serving = None
                    self.abort()
                    raise
                except Exception:
                    log.exception("unexpected error answering a request")
                    response = HttpResponse.text(500, "internal error", {})
            self._queue.popleft()
            if self._unparsed and len(self._queue) < self._limits.max_pending and not self._writing_paused:
                # room again, and the client reads its answers: parse what waits (else resume_writing does)
                data, self._unparsed = self._unparsed, b""
                self._feed(data)
            if self._transport is None or self._transport.is_closing():
                break
            last = self._stopping and not self._queue and not self._unparsed
            close = response.close or not pending.keep_alive or last
            connection = "close" if close else "keep-alive" if pending.http10 else None
            self._transport.write(self._front.encode(response, connection, pending.head))
            if close:
                self._transport.close()
                break
            self._maybe_resume_reading()
        self._serving = None
        self._after_answers()
        if self._stopping:
            self._front.check_settled()

    def _after_answers(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        if self._stopping:  # a request still arriving is dropped: the client sends it again elsewhere
            transport.close()
        elif self._relay is not None:
            self._flush_relay()
        elif self._continue_wanted:
            self._continue_wanted = False
            transport.write(CONTINUE)
        elif not self._in_message:
            self._set_timer(self._limits.keepalive_timeout, self._idle_timeout)

    # ------------------------------------------------------------------ the console's connections (aiohttp)

    def _flush_relay(self) -> None:
        """Give aiohttp what was parsed for it, once every answer of ours before it is written."""
        transport, relay = self._transport, self._relay
        if transport is None or relay is None or self._queue or self._serving is not None or transport.is_closing():
            return
        self._front.forget(self)  # aiohttp's runner stops it from here
        between_requests = not self._in_message and not self._discarding and not self._unparsed
        if relay.give(transport, between_requests=between_requests, on_lost=self._release):
            self._transport = None  # the raw stream is aiohttp's from here
            if self._reading_paused:
                transport.resume_reading()
        else:
            self._maybe_resume_reading()

    # ------------------------------------------------------------------ flow control, timers, stopping

    def _pause_reading(self) -> None:
        if not self._reading_paused and self._transport is not None and not self._transport.is_closing():
            self._reading_paused = True
            self._transport.pause_reading()

    def _maybe_resume_reading(self) -> None:
        if (self._reading_paused and not self._writing_paused and len(self._queue) <= 1 and not self._unparsed
                and self._transport):  # fmt: skip
            self._reading_paused = False
            self._transport.resume_reading()

    def _set_timer(self, delay: float, action: Callable[[], None]) -> None:
        """``action`` in ``delay`` seconds, replacing the one set before. One timer handle per connection is
        re-armed only when it would fire too late; firing early, it waits again for the rest (two handles per
        request otherwise)."""
        self._deadline = self._loop.time() + delay
        self._on_deadline = action
        if self._timer is None or self._timer_at > self._deadline:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = self._deadline
            self._timer = self._loop.call_at(self._deadline, self._timer_fired)

    def _stop_timer(self) -> None:
        """No more deadlines for this connection (a pending handle would keep it alive until it fires)."""
        self._on_deadline = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timer_fired(self) -> None:
        self._timer = None
        action = self._on_deadline
        if action is None:
            return
        if self._loop.time() < self._deadline:  # re-set since this handle was armed: wait for the rest
            self._timer_at = self._deadline
            self._timer = self._loop.call_at(self._deadline, self._timer_fired)
            return
        self._on_deadline = None
        action()

    def _idle_timeout(self) -> None:
        if self._transport is not None and not self._queue and self._serving is None:
            self._transport.close()

    def _request_timeout(self) -> None:
        self._refuse(408, "HTTP.RequestTimeout", "request not received in time")

    @property
    def reading_paused(self) -> bool:
        """Backpressure: answers are pending or the transport's write buffer is full."""
        return self._reading_paused

    @property
    def pending(self) -> int:
        """Requests read and not answered yet."""
        return len(self._queue)

    @property
    def settled(self) -> bool:
        """Nothing left to answer and the transport closed or closing."""
        return self._serving is None and (self._transport is None or self._transport.is_closing())

    def shutdown(self) -> None:
        """The server stops: answer what was received, then close."""
        self._stopping = True
        if self._serving is None and self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        if self._transport is not None:
            self._transport.abort()


class _TlsAccept(asyncio.Protocol):
    """A TLS connection from its accept to the end of its handshake, then its :class:`HttpConnection`'s.

    ``create_server(ssl=...)`` shows a protocol nothing until the handshake is done (up to asyncio's and uvloop's
    ``ssl_handshake_timeout``, 60 s), so silent connections would escape ``max_connections``. This one counts the raw
    connection at its accept (or refuses it there, before any handshake), runs the handshake with ``start_tls``
    (itself the interim protocol) and then gives the TLS transport to the connection. What the TLS layer delivers
    before that (``start_tls`` returns a turn of the loop after the handshake: a request sent with the client's last
    handshake flight) is kept and given to the connection after its ``connection_made``.
    """

    def __init__(self, front: HttpFront, context: SSLContext) -> None:
        self._front, self._context = front, context
        self._connection = HttpConnection(front)
        self._handed_over = self._lost = self._eof = self._writing_paused = False
        self._early: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        raw = cast(asyncio.Transport, transport)
        if not self._connection._admit(raw):
            return
        loop = asyncio.get_running_loop()
        # start_tls's first step now, not in a task a turn later: it gives the raw transport to the TLS layer before
        # uvloop (which starts reading once connection_made returns) can deliver the client's first bytes here
        starting = loop.start_tls(raw, self, self._context, server_side=True)
        handshake = loop.create_task(self._handshake(_Resumed(starting, starting.send(None))))
        self._front._handshakes.add(handshake)
        handshake.add_done_callback(self._front._handshakes.discard)

    async def _handshake(self, started: _Resumed[asyncio.Transport | None]) -> None:
        tls: asyncio.Transport | None = None
        try:
            tls = await started
        except OSError:  # the handshake failed or timed out, or the client left: start_tls closed the transport
            return
        finally:
            if tls is None:  # (also: the server stops, or asyncio's start_tls found the connection already lost)
                self._connection._release()
        if tls is None or self._lost:
            return
        self._handed_over = True
        tls.set_protocol(self._connection)
        self._connection.connection_made(tls)
        if self._writing_paused:
            self._connection.pause_writing()
        for data in self._early:
            self._connection.data_received(data)
        self._early.clear()
        if self._eof:
            self._connection.eof_received()

    # What the TLS layer calls before the hand-over is kept; a call it scheduled before then arrives here after it.

    def data_received(self, data: bytes) -> None:
        if self._handed_over:
            self._connection.data_received(data)
        else:
            self._early.append(data)

    def eof_received(self) -> bool | None:
        if self._handed_over:
            return self._connection.eof_received()
        self._eof = True
        return None

    def pause_writing(self) -> None:
        self._writing_paused = True
        if self._handed_over:
            self._connection.pause_writing()

    def resume_writing(self) -> None:
        self._writing_paused = False
        if self._handed_over:
            self._connection.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._handed_over:
            self._connection.connection_lost(exc)
        else:
            self._lost = True
            self._connection._release()


_EAGERLY = object()  # HttpConnection._serving while the answering loop runs in a read's callback


_T = TypeVar("_T")


class _Resumed(Generic[_T]):
    """Awaiting it carries on a coroutine that already ran up to its first wait (it yielded ``waiting_on``): what
    the task it runs in is sent or thrown goes to that coroutine, as ``await`` would have passed it, and the
    coroutine's result is the await's."""

    def __init__(self, coroutine: Coroutine[Any, Any, _T], waiting_on: Any) -> None:
        self._coroutine, self._waiting_on = coroutine, waiting_on

    def __await__(self) -> Generator[Any, Any, _T]:
        waiting_on = self._waiting_on
        while True:
            try:
                sent = yield waiting_on
            except BaseException as error:  # cancellation, GeneratorExit: the coroutine handles it
                try:
                    waiting_on = self._coroutine.throw(error)
                except StopIteration as done:
                    return cast(_T, done.value)
            else:
                try:
                    waiting_on = self._coroutine.send(sent)
                except StopIteration as done:
                    return cast(_T, done.value)


async def _carry_on(coroutine: Coroutine[Any, Any, None], waiting_on: Any) -> None:
    await _Resumed(coroutine, waiting_on)


def _declares_body(request: HttpRequest) -> bool:
    length = request.headers.get("Content-Length", "0")
    return "Transfer-Encoding" in request.headers or length.strip() not in ("", "0")
