"""``kubekms random``: random bytes from the backend's generator."""

from __future__ import annotations

from pathlib import Path

import click

from kubekms.cli.backend_access import client_command, run_with_backend
from kubekms.cli.output import emit


@click.command("random")
@click.option("--length", type=int, default=32, show_default=True, help="Number of bytes (1-1024).")
@client_command
def random_command(length: int, backend_config: Path | None, output: str) -> None:
    """Print random bytes from the backend, hex."""
    data = run_with_backend(backend_config, lambda backend: backend.generate_random(length))
    emit(output, {"random": data.hex(), "length": len(data)}, data.hex())
