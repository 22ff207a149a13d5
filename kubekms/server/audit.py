"""The audit log: one JSON line per call (who, which project, what, which key, result, request id).

Lines are buffered in memory and written by :meth:`AuditLog.flush` (the server flushes on a
short timer and at shutdown) so the request path does no file IO of its own. Callers pass
only identifiers and codes: never key material.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import TextIO


class AuditLog:
    def __init__(self, destination: str) -> None:
        """``destination`` is a file path (appended, created 0600) or ``-`` for stdout."""
        self._pending: list[str] = []
        self._stream: TextIO
        if destination == "-":
            self._stream, self._owned = sys.stdout, False
        else:
            path = Path(destination)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._stream, self._owned = os.fdopen(fd, "a", encoding="utf-8"), True

    def record(
        self,
        *,
        principal: str,
        project_id: str,
        operation: str,
        key_id: str,
        result: str,
        request_id: str,
        status: int,
    ) -> None:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}Z",
            "principal": principal,
            "project": project_id,
            "operation": operation,
            "key_id": key_id,
            "result": result,
            "status": status,
            "request_id": request_id,
        }
        self._pending.append(json.dumps(entry, separators=(",", ":")))

    def flush(self) -> None:
        if not self._pending:
            return
        self._stream.write("\n".join(self._pending) + "\n")
        self._stream.flush()
        self._pending.clear()  # only once written: a failed write is retried at the next flush

    def close(self) -> None:
        self.flush()
        if self._owned:
            self._stream.close()
