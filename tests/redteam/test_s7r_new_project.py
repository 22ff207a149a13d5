"""A new project (tenant) opened at once by several worker processes of one server.

Its keystore (root key, SQLite file) is made on its first request, by whichever worker takes it; requests
fired together reach both workers, which make it at the same instant.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "keystore_pg"))
from race_support import fire, workers

from kubekms.devenv.kmsserver import KMSServer
from kubekms.providers import open_backend

ROUNDS = 4  # new projects, each opened by 8 requests at once


def create_in(server: KMSServer, project_id: str, alias: str) -> Any:
    """A v1.0 create-key in ``project_id``, on a connection of its own."""

    async def run() -> Any:
        backend = await open_backend(dataclasses.replace(server.backend_config(), project_id=project_id))
        try:
            return await backend.create_key(alias)
        finally:
            await backend.close()

    return asyncio.run(run())


def test_requests_opening_a_new_project_at_once_on_two_workers_all_succeed(tmp_path: Path) -> None:
    with workers(tmp_path) as server:
        for round_ in range(ROUNDS):
            project = f"tenant{round_}"
            outcomes = fire([lambda p=project, n=n: create_in(server, p, f"key-{n}") for n in range(8)])
            failed = [repr(outcome) for outcome in outcomes if isinstance(outcome, BaseException)]
            assert not failed, failed
