"""Rendering of backend models for the CLI: aligned tables for people, JSON for scripts."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import click

from kubekms.backend import DataKey, KeyMetadata, KeyState, Quota, RotationStatus

STATE_NAMES = {state: state.name.lower().replace("_", "-") for state in KeyState}


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def key_record(meta: KeyMetadata) -> dict[str, Any]:
    return {
        "key_id": meta.key_id,
        "alias": meta.alias,
        "state": STATE_NAMES[meta.state],
        "description": meta.description,
        "key_spec": meta.key_spec,
        "key_usage": meta.key_usage,
        "created_at": _time(meta.created_at),
        "current_version": meta.current_version,
        "rotation_enabled": meta.rotation_enabled,
        "rotation_interval_days": meta.rotation_interval_days,
        "last_rotation_at": _time(meta.last_rotation_at),
        "deletion_date": _time(meta.deletion_date),
        "aliases": list(meta.aliases),
        "tags": dict(meta.tags),
    }


def listed_key_record(meta: KeyMetadata) -> dict[str, Any]:
    """A key as a listing shows it: no ``aliases`` and ``tags``, which list calls do not return (an empty
    list and map there read as "none"); ``kubekms key describe`` shows them."""
    record = key_record(meta)
    del record["aliases"], record["tags"]
    return record


def rotation_record(status: RotationStatus) -> dict[str, Any]:
    return {
        "enabled": status.enabled,
        "interval_days": status.interval_days,
        "last_rotation_at": _time(status.last_rotation_at),
        "number_of_rotations": status.number_of_rotations,
        "next_rotation_at": _time(status.next_rotation_at),
    }


def data_key_record(data_key: DataKey) -> dict[str, Any]:
    record: dict[str, Any] = {
        "key_id": data_key.key_id,
        "key_version": data_key.key_version,
        "ciphertext": data_key.ciphertext.hex(),
    }
    if data_key.plaintext is not None:
        record["plaintext"] = data_key.plaintext.hex()
    return record


def quota_record(quota: Quota) -> dict[str, Any]:
    return {"resource": quota.resource, "used": quota.used, "limit": quota.limit}


# C0, DEL and C1 control characters: anyone who may set a description or a tag would otherwise write escape
# sequences (retitle, clear, move the cursor, hide text behind a carriage return) to the reader's terminal
_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}


def printable(text: str) -> str:
    """``text`` with its control characters shown as ``\\xNN`` (for people; JSON output escapes them itself)."""
    return text.translate(_CONTROLS)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Mapping):
        return printable(",".join(f"{k}={v}" for k, v in value.items())) or "-"
    if isinstance(value, list | tuple):
        return printable(",".join(str(v) for v in value)) or "-"
    return printable(str(value)) if value != "" else "-"


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    cells = [[column.upper().replace("_", " ") for column in columns]]
    cells += [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in cells
    )


def fields(record: Mapping[str, Any]) -> str:
    """One record as ``name: value`` lines."""
    width = max(len(name) for name in record)
    return "\n".join(f"{name.replace('_', ' ') + ':':<{width + 2}}{_cell(value)}" for name, value in record.items())


def emit(output: str, data: Any, human: str) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False) if output == "json" else human)
