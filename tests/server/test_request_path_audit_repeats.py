"""Audit lines of repeated calls (their middle formatted once) stay exactly what json.dumps writes, each with its own
fields, also past the bound of remembered middles."""

from __future__ import annotations

import json
from pathlib import Path

from kubekms.server.audit import _MIDDLES_KEPT, AuditLog, verify_chain


def test_repeated_and_many_distinct_records_are_each_written_with_their_own_fields(tmp_path: Path) -> None:
    log = AuditLog(str(tmp_path / "audit.log"))
    expected: list[dict[str, object]] = []
    for index in range(_MIDDLES_KEPT + 300):  # past the bound: the remembered middles are dropped and made again
        for fields in (("admin", "default", "aws:Decrypt", "k-1", "OK", 200),  # the same call, again and again
                       ("admin", "default", "aws:Decrypt", f"k-{index}", "OK", 200),  # another key each time
                       ("ops", "default", "aws:Decrypt", "k-1", "KMS.0207", 400)):  # fmt: skip
            principal, project_id, operation, key_id, result, status = fields
            request_id = f"r-{index}-{len(expected)}"
            log.record(principal=principal, project_id=project_id, operation=operation, key_id=key_id,
                       result=result, status=status, request_id=request_id)  # fmt: skip
            names = ("principal", "project", "operation", "key_id", "result", "status", "request_id")
            expected.append(dict(zip(names, (*fields, request_id), strict=True)))
        if index % 97 == 0:
            log.flush()
    log.close()
    lines = (tmp_path / "audit.log").read_bytes().splitlines()
    assert len(lines) == len(expected)
    for line, wanted in zip(lines, expected, strict=True):
        entry = json.loads(line)
        assert line == json.dumps(entry, separators=(",", ":")).encode()
        assert {name: entry[name] for name in wanted} == wanted
    assert verify_chain([tmp_path / "audit.log"]).ok
