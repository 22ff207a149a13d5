"""The server's refusal logging (the JSON log format itself is :mod:`kubekms.logs`).

Refused requests (anything a client sent that earned a 4xx) log one line each, rate-limited per
client (:class:`RefusalLog`); only unexpected exceptions carry a traceback.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp.http_exceptions import HttpProcessingError

from kubekms.logs import configure_json_logging
from kubekms.server.metrics import ServerMetrics

# configure_json_logging is re-exported for callers of the old path (bench/plugin_bench.py)
__all__ = ["MalformedHttpFilter", "RefusalLog", "configure_json_logging"]


class RefusalLog:
    """One log line per refused request, without traceback, at most ``burst`` per client per ``window``.

    A client that keeps sending bad requests cannot flood the log: past its burst, refusals
    are only counted (in ``kubekms_server_refused_requests`` and, for the lines not written,
    ``kubekms_server_refusal_lines_suppressed``); the client's next line after the window
    says how many were left out. At most ``max_clients`` clients are tracked (least recently
    refused forgotten first), so the table cannot grow without bound either.
    """

    def __init__(
        self,
        metrics: ServerMetrics,
        *,
        burst: int = 5,
        window: float = 60.0,
        max_clients: int = 4096,
        clock: Callable[[], float] = time.monotonic,
        logger: logging.Logger | None = None,
    ) -> None:
        self._metrics = metrics
        self._burst = burst
        self._window = window
        self._max_clients = max_clients
        self._clock = clock
        self._log = logger or logging.getLogger("kubekms.server.refusals")
        self._clients: OrderedDict[str, _ClientWindow] = OrderedDict()

    def refused(self, *, client: str, wire: str, reason: str, status: int, operation: str, request_id: str) -> None:
        self._metrics.refused(wire, reason)
        now = self._clock()
        window = self._clients.pop(client, None)
        if window is None or now - window.started >= self._window:
            suppressed = window.suppressed if window is not None else 0
            window = _ClientWindow(started=now, suppressed_before=suppressed)
        self._clients[client] = window
        if len(self._clients) > self._max_clients:
            self._clients.popitem(last=False)
        if window.lines >= self._burst:
            window.suppressed += 1
            self._metrics.refusal_lines_suppressed.inc()
            return
        window.lines += 1
        fields: dict[str, object] = {"client": client, "wire": wire, "reason": reason, "status": status,
                                     "operation": operation, "request_id": request_id}  # fmt: skip
        if window.suppressed_before:
            fields["suppressed_before"] = window.suppressed_before
            window.suppressed_before = 0
        self._log.info("request refused", extra={"fields": fields})


@dataclass
class _ClientWindow:
    started: float
    lines: int = 0
    suppressed: int = 0
    suppressed_before: int = 0


class MalformedHttpFilter(logging.Filter):
    """Turns aiohttp's traceback per malformed HTTP request into one rate-limited refusal line.

    Only the console's connections reach aiohttp (the HTTP front refuses its own malformed
    requests with the same reasons and log). aiohttp logs "Error handling request" with the
    parser's exception on ``aiohttp.server``; an exception that is not an HTTP parsing error (a
    bug) keeps its traceback.
    """

    def __init__(self, refusals: RefusalLog) -> None:
        super().__init__()
        self._refusals = refusals

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, HttpProcessingError):
            return True
        client = str(record.args[0]) if isinstance(record.args, tuple) and record.args else "-"
        status = error.code if 400 <= error.code < 500 else 400
        self._refusals.refused(client=client, wire="http", reason=f"HTTP.{type(error).__name__}", status=status,
                               operation="-", request_id="-")  # fmt: skip
        return False
