"""``kubekms quota``: the backend's quotas and how much of them is used."""

from __future__ import annotations

from pathlib import Path

import click

from kubekms.backend import Backend, Quota
from kubekms.cli.backend_access import client_command, run_with_backend
from kubekms.cli.output import emit, quota_record, table


@click.command("quota")
@client_command
def quota(backend_config: Path | None, output: str) -> None:
    """Show quotas (used / limit) and the number of keys."""

    async def read(backend: Backend) -> tuple[list[Quota], int]:
        return await backend.quotas(), await backend.instance_count()

    quotas, instances = run_with_backend(backend_config, read)
    records = [quota_record(item) for item in quotas]
    human = table(records, ("resource", "used", "limit")) + f"\n\nkeys: {instances}"
    emit(output, {"quotas": records, "instances": instances}, human)
