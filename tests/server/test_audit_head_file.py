"""The head file shared by stdout audit writers: what it holds never reaches a line unchecked.

The line is an f-string (audit.py renders it by hand); a digest read from the head file goes into it
as ``prev``. A head file that holds anything but a sequence number and a 64-hex digest is read as no
head (the chain starts over, as for a missing or unreadable file), never pasted into the JSON line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kubekms.server.audit import GENESIS, AuditLog


@pytest.mark.parametrize(
    "content",
    ['7 abc","principal":"mallory","x":"', "7 " + "A" * 64, "7 " + "0" * 63 + "\\", "x7 " + "0" * 64],
)
def test_a_malformed_head_file_is_no_head(tmp_path: Path, capfd: pytest.CaptureFixture[str], content: str) -> None:
    head_file = tmp_path / "audit-head"
    head_file.write_text(content + "\n")
    audit = AuditLog("-", head_file=head_file)
    audit.record(principal="admin", project_id="p", operation="describe-key", key_id="k", result="ok",
                 request_id="r", status=200)  # fmt: skip
    audit.flush()
    line = capfd.readouterr().out.strip()
    entry = json.loads(line)
    assert (entry["seq"], entry["prev"], entry["principal"]) == (1, GENESIS, "admin")
    assert list(entry) == ["seq", "prev", "time", "principal", "project", "operation", "key_id", "result",
                           "status", "request_id"]  # fmt: skip


def test_a_well_formed_head_file_is_chained_on(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    head_file = tmp_path / "audit-head"
    head_file.write_text("7 " + "ab" * 32 + "\n")
    audit = AuditLog("-", head_file=head_file)
    audit.record(principal="admin", project_id="p", operation="describe-key", key_id="k", result="ok",
                 request_id="r", status=200)  # fmt: skip
    audit.flush()
    entry = json.loads(capfd.readouterr().out)
    assert (entry["seq"], entry["prev"]) == (8, "ab" * 32)
