"""The server's own connection to a shared PostgreSQL keystore: readiness and the maintenance lock.

Several server replicas on one database must run the maintenance pass (scheduled rotations,
destruction after the pending window) one at a time across hosts. The replica that runs it
holds a session-level advisory lock on this dedicated connection (``pg_try_advisory_lock``):
PostgreSQL releases it when the session ends (the process died, ``pg_terminate_backend``, or
the server-side TCP keepalive found the host gone), and another replica takes it at its next
pass. The keystore's own per-project transaction lock stays the last line: a pass reads the
keys it acts on inside its write transaction, so even two passes could not destroy twice.

The same connection answers readiness: a replica whose database does not answer a round
trip within :data:`PROBE_TIMEOUT` is taken out of the Service, never restarted (liveness
stays ``/healthz``). With SQLite there is no shared database: the per-host leader worker runs
maintenance, and readiness needs no round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import psycopg

log = logging.getLogger("kubekms.server")

PROBE_TIMEOUT = 3.0  # seconds for connect + one round trip
# two int4 keys: a lock space apart from the keystore's one-bigint transaction locks
_LOCK_SQL = "SELECT pg_try_advisory_lock(hashtext('kubekms'), hashtext('maintenance'))"
# the database server notices a vanished replica (no FIN: node loss) and frees its lock within ~10 s
_KEEPALIVE = "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3"


class SharedDatabase:
    """One dedicated connection per server process, opened on first use and reopened after a failure."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._connection: psycopg.AsyncConnection[Any] | None = None
        self._holds_lock = False
        self._busy = asyncio.Lock()  # one statement at a time on the connection

    async def _round_trip(self, statement: str) -> Any:
        async with self._busy:
            try:
                async with asyncio.timeout(PROBE_TIMEOUT):
                    if self._connection is None or self._connection.closed:
                        self._holds_lock = False  # a new session holds nothing
                        self._connection = await psycopg.AsyncConnection.connect(
                            self._url, autocommit=True, connect_timeout=int(PROBE_TIMEOUT)
                        )
                        await self._connection.execute(_KEEPALIVE)
                    cursor = await self._connection.execute(statement)
                    row = await cursor.fetchone()
                    return None if row is None else row[0]
            except (psycopg.Error, OSError, TimeoutError):
                await self._drop()
                raise

    async def _drop(self) -> None:
        connection, self._connection, self._holds_lock = self._connection, None, False
        if connection is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await connection.close()

    async def ping(self) -> None:
        """One round trip; raises (psycopg.Error, OSError, TimeoutError) when the database does not answer."""
        await self._round_trip("SELECT 1")

    async def holds_maintenance_lock(self) -> bool:
        """Whether this process may run the maintenance pass now: it holds, or just took, the lock."""
        try:
            if self._holds_lock:
                await self.ping()  # the session lives, so the lock it took lives
                return self._holds_lock
            taken = bool(await self._round_trip(_LOCK_SQL))
        except (psycopg.Error, OSError, TimeoutError) as error:
            log.warning(
                "maintenance lock: the database did not answer", extra={"fields": {"error": type(error).__name__}}
            )
            return False
        if taken:
            self._holds_lock = True
            log.info("maintenance lock taken: this replica runs the maintenance passes")
        return taken

    async def close(self) -> None:
        async with self._busy:
            await self._drop()
