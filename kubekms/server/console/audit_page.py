"""The project's audit log in the console: the newest entries of the server's audit file, filtered.

Only a principal that may call every operation on every key of the project reads it (the
wires have no audit operation to grant, so the console asks for the widest grant there is).
The page reads at most the last ``MAX_READ_BYTES`` of the current file, off the event loop,
and shows the newest ``MAX_ROWS`` matching entries; rotated files and entries still in the
server's 0.2-second write buffer are not shown.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from kubekms.errors import InvalidArgument
from kubekms.server.console.gate import Gate
from kubekms.server.operations import OPERATIONS
from kubekms.wire import inputs

MAX_READ_BYTES = 8 * 1024 * 1024
MAX_ROWS = 200
MAX_FILTER_CHARS = 300
OPERATION_NAMES = sorted(OPERATIONS)
_MINUTE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}")  # what <input type=datetime-local> sends


def _moment(query: Mapping[str, str], name: str) -> str:
    """A UTC minute as the audit log writes times (``YYYY-MM-DDTHH:MM``), or "" for none."""
    value = inputs.text(query.get(name, ""), name, max_chars=16)
    if not value:
        return ""
    if not _MINUTE.fullmatch(value):
        raise InvalidArgument(f"{name} must be a UTC time as YYYY-MM-DDTHH:MM")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise InvalidArgument(f"{name} is not a valid time") from None
    return value


@dataclass(frozen=True)
class AuditFilter:
    key: str = ""
    principal: str = ""
    operation: str = ""
    since: str = ""  # UTC minutes, compared as text with the entries' ISO times
    until: str = ""

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> AuditFilter:
        def text(name: str) -> str:
            return inputs.text(query.get(name, ""), name, max_chars=MAX_FILTER_CHARS).strip()

        operation = text("operation")
        if operation and operation not in OPERATIONS:
            raise InvalidArgument("operation must be one of the API's operation names")
        return cls(text("key"), text("principal"), operation, _moment(query, "since"), _moment(query, "until"))

    def matches(self, entry: Mapping[str, Any]) -> bool:
        moment = str(entry.get("time", ""))
        return (
            (not self.key or self.key == entry.get("key_id"))
            and (not self.principal or self.principal == entry.get("principal"))
            and (not self.operation or self.operation == entry.get("operation"))
            and (not self.since or moment[:16] >= self.since)
            and (not self.until or moment[:16] <= self.until)
        )


CREATION_OPERATIONS = frozenset({"create-key", "aws:CreateKey"})


@dataclass(frozen=True)
class _CreationFilter(AuditFilter):
    """A key's creation lines, from the console or any wire that names the new key: one pass over the file."""

    def matches(self, entry: Mapping[str, Any]) -> bool:
        return entry.get("operation") in CREATION_OPERATIONS and super().matches(entry)


@dataclass(frozen=True)
class Creation:
    principal: str
    time: datetime


def newest_entries(path: Path, project_id: str, wanted: AuditFilter) -> list[dict[str, Any]]:
    """The newest ``MAX_ROWS`` entries of ``project_id`` that match, newest first (blocking IO)."""
    # the key id as the log writes it (json.dumps): lines without it are skipped unparsed
    needle = f'"key_id":{json.dumps(wanted.key)}'.encode() if wanted.key else b""
    try:
        with path.open("rb") as handle:
            start = max(handle.seek(0, os.SEEK_END) - MAX_READ_BYTES, 0)
            handle.seek(start)
            lines = handle.read().split(b"\n")
    except FileNotFoundError:
        return []
    if start:
        lines = lines[1:]  # the first line read is cut
    found: list[dict[str, Any]] = []
    for line in reversed(lines):
        if needle not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("project") == project_id and wanted.matches(entry):
            found.append(entry)
            if len(found) >= MAX_ROWS:
                break
    return found


def creation_of(path: Path, project_id: str, key_id: str) -> Creation | None:
    """Who created ``key_id`` and when, if the newest part of the audit file still says so (blocking IO).

    The console's and the v1.0 wire's lines say ``create-key``, the AWS wire's ``aws:CreateKey``;
    the Cloud KMS wire's name no key id (its keys have resource names).
    """
    for entry in newest_entries(path, project_id, _CreationFilter(key=key_id)):
        try:
            moment = datetime.fromisoformat(str(entry.get("time")))
        except ValueError:
            continue
        if entry.get("result") == "OK" and isinstance(entry.get("principal"), str):
            return Creation(entry["principal"], moment)
    return None


class AuditPage:
    def __init__(self, gate: Gate) -> None:
        self._gate = gate

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_get("/p/{project}/audit", self.show)

    async def show(self, request: web.Request) -> web.Response:
        visitor = await self._gate.visitor(request)
        project = self._gate.project_id(request)
        access = self._gate.access(visitor, project)
        if not access.may_read_audit():
            raise access.deny_audit()
        wanted = AuditFilter.from_query(request.query)
        path = self._gate.audit_path
        entries = [] if path is None else await asyncio.to_thread(newest_entries, path, project, wanted)
        return self._gate.page(
            visitor,
            "audit.html",
            project=project,
            entries=entries,
            wanted=wanted,
            operations=OPERATION_NAMES,
            to_stdout=path is None,
            max_rows=MAX_ROWS,
        )
