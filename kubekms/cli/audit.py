"""``kubekms audit verify``: check the hash chain of the server's audit log files."""

from __future__ import annotations

from pathlib import Path

import click

from kubekms.server.audit import verify_chain


@click.group("audit")
def audit() -> None:
    """Check the integrity of the server's audit log."""


@audit.command("verify")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--anchor",
    metavar="SHA256",
    help="A head printed by an earlier verify: fail unless that line is still in the chain (detects truncation).",
)
@click.option("--partial", is_flag=True, help="The first line may continue an older file no longer available.")
def verify(files: tuple[Path, ...], anchor: str | None, partial: bool) -> None:
    """Verify the chain over FILES (the current file and its rotated ones, in any order).

    Exits 1 naming each line that was edited, deleted, inserted or moved.
    """
    report = verify_chain(files, anchor=anchor, partial=partial)
    for broken in report.breaks:
        click.echo(broken, err=True)
    if not report.ok:
        raise SystemExit(1)
    if report.head is None:
        click.echo(f"OK: {report.files} file(s), no lines")
        return
    click.echo(
        f"OK: {report.lines} line(s) in {report.files} file(s), sequence {report.first_seq}..{report.head.seq}; "
        f"head {report.head.digest}"
    )
