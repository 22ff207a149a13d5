"""Red team (H14) of the audit log as a file: a symlink planted where the log goes, and a full disk."""

from __future__ import annotations

import json
import stat
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from kubekms.devenv.kmsserver import KMSServer
from kubekms.errors import KMSError
from kubekms.server import audit as audit_module
from kubekms.server.audit import AuditLog, verify_chain


def one_record(audit: AuditLog) -> None:
    audit.record(principal="admin", project_id="p", operation="create-key", key_id="k", result="ok",
                 request_id="r", status=200)  # fmt: skip


def test_a_symlink_planted_at_the_audit_log_is_refused_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"  # stands for /etc/... or another tenant's file the server may write
    victim.write_bytes(b"precious\n")
    planted = tmp_path / "state" / "audit.log"
    planted.parent.mkdir()
    planted.symlink_to(victim)
    with pytest.raises(OSError, match="symbolic link"):
        AuditLog(str(planted))
    assert victim.read_bytes() == b"precious\n"


def readiness(endpoint: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"{endpoint}/readyz", timeout=5) as answer:
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_a_full_disk_under_the_audit_log_makes_the_server_unready_and_refuse_calls(tmp_path: Path) -> None:
    # /dev/full: every write fails with ENOSPC, a real full disk without filling one
    server = KMSServer(tmp_path / "kms", project_id="proj1")
    config_path = tmp_path / "kms" / "server.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["audit_log"] = "/dev/full"
    config_path.write_text(yaml.safe_dump(config))
    server.start()
    try:
        assert readiness(server.endpoint) == (200, "ok")
        server.call("create_key", "audited")
        deadline = time.monotonic() + 10
        while (answer := readiness(server.endpoint))[0] == 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert answer[0] == 503
        assert "audit log cannot be written" in answer[1] and "No space left" in answer[1]
        with pytest.raises(KMSError, match="audit log") as refused:  # no call served that leaves no record
            server.call("create_key", "unaudited")
        assert refused.value.retryable
    finally:
        server.stop()


def test_the_audit_log_reports_a_failing_write_until_one_succeeds(tmp_path: Path) -> None:
    audit = AuditLog("/dev/full")
    assert audit.write_error is None
    one_record(audit)
    with pytest.raises(OSError):
        audit.flush()
    assert audit.write_error is not None and "No space left" in audit.write_error
    assert audit.pending == 1  # kept for the next flush, not dropped


def test_a_principal_cannot_forge_an_audit_line_through_any_field(tmp_path: Path) -> None:
    forged = '"}\n{"seq":2,"prev":"' + "0" * 64 + '","principal":"admin"}\r\u2028\x1b[2J'
    path = tmp_path / "audit.log"
    audit = AuditLog(str(path))
    audit.record(principal=forged, project_id=forged, operation=forged, key_id=forged, result=forged,
                 request_id=forged, status=200)  # fmt: skip
    audit.close()
    data = path.read_bytes()
    assert data.count(b"\n") == 1 and data.isascii() and b"\x1b" not in data
    entry = json.loads(data)
    assert [entry[name] for name in ("principal", "project", "operation", "key_id", "result", "request_id")] == [
        forged
    ] * 6
    assert verify_chain([path]).ok


def test_records_kept_while_the_audit_log_cannot_be_written_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_module, "MAX_PENDING", 3)
    audit = AuditLog("/dev/full")
    for _ in range(5):
        one_record(audit)
    assert audit.pending == 3 and audit.dropped == 2


def test_a_directory_made_for_the_audit_log_is_private(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "kubekms" / "audit.log"
    audit = AuditLog(str(path))
    try:
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    finally:
        audit.close()
