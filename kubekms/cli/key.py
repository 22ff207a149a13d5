"""``kubekms key``: key lifecycle and rotation on the configured backend."""

from __future__ import annotations

from pathlib import Path

import click

from kubekms.backend import Backend, KeyMetadata, KeyState
from kubekms.cli.backend_access import client_command, run_with_backend
from kubekms.cli.output import STATE_NAMES, emit, fields, key_record, listed_key_record, rotation_record, table
from kubekms.cli.pairs import key_value_pairs

LIST_COLUMNS = ("key_id", "alias", "state", "current_version", "rotation_enabled", "created_at", "description")
STATE_BY_NAME = {name: state for state, name in STATE_NAMES.items() if state is not KeyState.DESTROYED}


def _show_key(output: str, meta: KeyMetadata) -> None:
    record = key_record(meta)
    emit(output, record, fields(record))


@click.group()
def key() -> None:
    """Create, list, describe, rename, enable, disable, delete and rotate keys."""


@key.command("create")
@click.argument("alias")
@click.option("--description", default="", help="Free text, at most 255 characters.")
@click.option("--tag", "tags", multiple=True, metavar="KEY=VALUE", help="A tag; repeat for several.")
@client_command
def create(alias: str, description: str, tags: tuple[str, ...], backend_config: Path | None, output: str) -> None:
    """Create a key named ALIAS (AES-256, encrypt/decrypt)."""
    parsed = key_value_pairs(tags, "--tag")
    meta = run_with_backend(
        backend_config, lambda backend: backend.create_key(alias, description=description, tags=parsed)
    )
    _show_key(output, meta)


@key.command("list")
@click.option("--state", type=click.Choice(sorted(STATE_BY_NAME)), default=None, help="Only keys in this state.")
@click.option("--limit", type=int, default=100, show_default=True, help="Keys per page.")
@click.option("--marker", default=None, help="Continue after this marker (printed as NEXT MARKER).")
@click.option("--all", "all_pages", is_flag=True, help="Follow every page.")
@client_command
def list_command(
    state: str | None, limit: int, marker: str | None, all_pages: bool, backend_config: Path | None, output: str
) -> None:
    """List keys, one page (or --all)."""
    wanted = STATE_BY_NAME[state] if state else None

    async def collect(backend: Backend) -> tuple[list[KeyMetadata], str | None, int]:
        keys: list[KeyMetadata] = []
        next_marker = marker
        while True:
            page = await backend.list_keys(limit=limit, marker=next_marker, state=wanted)
            keys += page.keys
            next_marker = page.next_marker
            if not all_pages or next_marker is None:
                return keys, next_marker, page.total

    keys, next_marker, total = run_with_backend(backend_config, collect)
    records = [listed_key_record(meta) for meta in keys]
    human = table(records, LIST_COLUMNS)
    if next_marker:
        human += f"\n\n{len(records)} of {total} keys; NEXT MARKER: {next_marker}"
    emit(output, {"keys": records, "next_marker": next_marker, "total": total}, human)


@key.command("describe")
@click.argument("key_ref", metavar="KEY")
@client_command
def describe(key_ref: str, backend_config: Path | None, output: str) -> None:
    """Show one key (by id or alias)."""
    _show_key(output, run_with_backend(backend_config, lambda backend: backend.describe_key(key_ref)))


@key.command("rename")
@click.argument("key_ref", metavar="KEY")
@click.argument("alias", metavar="NEW_ALIAS")
@client_command
def rename(key_ref: str, alias: str, backend_config: Path | None, output: str) -> None:
    """Rename the key's alias (Huawei's key_alias) to NEW_ALIAS; the old one no longer names it."""
    _show_key(output, run_with_backend(backend_config, lambda backend: backend.update_key_alias(key_ref, alias)))


@key.command("enable")
@click.argument("key_ref", metavar="KEY")
@client_command
def enable(key_ref: str, backend_config: Path | None, output: str) -> None:
    """Enable a disabled key."""
    _show_key(output, run_with_backend(backend_config, lambda backend: backend.enable_key(key_ref)))


@key.command("disable")
@click.argument("key_ref", metavar="KEY")
@client_command
def disable(key_ref: str, backend_config: Path | None, output: str) -> None:
    """Disable an enabled key: it refuses every cryptographic operation until enabled."""
    _show_key(output, run_with_backend(backend_config, lambda backend: backend.disable_key(key_ref)))


@key.command("schedule-deletion")
@click.argument("key_ref", metavar="KEY")
@click.option("--days", type=int, default=30, show_default=True, help="Pending window in days (7-1096).")
@client_command
def schedule_deletion(key_ref: str, days: int, backend_config: Path | None, output: str) -> None:
    """Schedule the key's deletion; its material is destroyed when the window ends."""
    _show_key(output, run_with_backend(backend_config, lambda backend: backend.schedule_key_deletion(key_ref, days)))


@key.command("cancel-deletion")
@click.argument("key_ref", metavar="KEY")
@client_command
def cancel_deletion(key_ref: str, backend_config: Path | None, output: str) -> None:
    """Cancel a scheduled deletion; the key comes back disabled."""
    _show_key(output, run_with_backend(backend_config, lambda backend: backend.cancel_key_deletion(key_ref)))


@key.command("rotate")
@click.argument("key_ref", metavar="KEY")
@client_command
def rotate(key_ref: str, backend_config: Path | None, output: str) -> None:
    """Rotate now: add a key version; older versions keep decrypting."""
    _show_key(output, run_with_backend(backend_config, lambda backend: backend.rotate_key(key_ref)))


@key.command("rotation")
@click.argument("key_ref", metavar="KEY")
@click.option("--enable/--disable", "enable_rotation", default=None, help="Turn automatic rotation on or off.")
@click.option("--interval-days", type=int, default=None, help="Days between automatic rotations.")
@client_command
def rotation(
    key_ref: str, enable_rotation: bool | None, interval_days: int | None, backend_config: Path | None, output: str
) -> None:
    """Show automatic rotation; with --enable/--disable or --interval-days, change it first."""

    async def apply(backend: Backend) -> dict[str, object]:
        if enable_rotation is None and interval_days is None:
            status = await backend.get_rotation_status(key_ref)
        else:
            enabled = enable_rotation
            if enabled is None:
                enabled = (await backend.get_rotation_status(key_ref)).enabled
            status = await backend.set_rotation(key_ref, enabled=enabled, interval_days=interval_days)
        return rotation_record(status)

    record = run_with_backend(backend_config, apply)
    emit(output, record, fields(record))
