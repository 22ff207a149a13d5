"""Audit lines written without json.dumps per record are the bytes json.dumps writes, whatever the values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubekms.server.audit import AuditLog, verify_chain

VALUES = (
    "plain",
    'quote " and \\ backslash',
    "new\nline\ttab\x00nul\x1f",
    "é ü 漢字 🔑",
    "\ud800 lone",
    "</script>",
    "",
)


@pytest.mark.parametrize("value", VALUES)
def test_a_record_is_written_as_json_dumps_writes_it(tmp_path: Path, value: str) -> None:
    log = AuditLog(str(tmp_path / "audit.log"))
    for _ in range(2):
        log.record(principal=value, project_id="p" + value, operation=value + "op", key_id=value,
                   result=value or "OK", request_id=value[::-1], status=403)  # fmt: skip
    log.close()
    lines = (tmp_path / "audit.log").read_bytes().splitlines()
    assert len(lines) == 2
    for seq, line in enumerate(lines, start=1):
        entry = json.loads(line)
        assert line == json.dumps(entry, separators=(",", ":")).encode()  # canonical: the old writer's bytes
        assert list(entry)[:3] == ["seq", "prev", "time"] and entry["seq"] == seq
        assert (entry["principal"], entry["project"], entry["operation"], entry["key_id"], entry["result"],
                entry["request_id"], entry["status"]) == (value, "p" + value, value + "op", value, value or "OK",
                                                          value[::-1], 403)  # fmt: skip
    assert verify_chain([tmp_path / "audit.log"]).ok
