"""The audit log's hash chain: ``kubekms audit verify`` names every edited, deleted, inserted,
moved or cut line; rotation and restarts keep one chain; a real server writes a valid chain."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kubekms.cli.main import cli
from kubekms.devenv.kmsserver import KMSServer
from kubekms.server.audit import GENESIS, AuditLog


def write_records(path: Path, count: int, *, start: int = 0, max_bytes: int | None = None, batch: int = 1) -> None:
    """``count`` calls through a real AuditLog, flushed every ``batch`` records, then closed."""
    audit = AuditLog(str(path)) if max_bytes is None else AuditLog(str(path), max_bytes=max_bytes)
    for number in range(start, start + count):
        audit.record(
            principal="admin",
            project_id="proj1",
            operation="create-datakey",
            key_id=f"key-{number}",
            result="ok",
            request_id=f"req-{number}",
            status=200,
        )
        if (number + 1) % batch == 0:
            audit.flush()
    audit.close()


def verify(*paths: Path | str) -> Result:
    return CliRunner().invoke(cli, ["audit", "verify", *map(str, paths)])


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def rewrite(path: Path, change: Callable[[list[bytes]], list[bytes]]) -> None:
    path.write_bytes(b"".join(change(lines_of(path))))


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "audit.log"
    write_records(path, 8)
    return path


def test_intact_log_verifies_and_prints_its_head(log: Path) -> None:
    result = verify(log)
    assert result.exit_code == 0, result.output
    last = lines_of(log)[-1].rstrip(b"\n")
    assert f"sequence 1..8; head {hashlib.sha256(last).hexdigest()}" in result.output
    first = json.loads(lines_of(log)[0])
    assert (first["seq"], first["prev"]) == (1, GENESIS)


def edit_status(lines: list[bytes]) -> list[bytes]:
    lines[2] = lines[2].replace(b'"status":200', b'"status":403')
    return lines


def swap_3_and_4(lines: list[bytes]) -> list[bytes]:
    lines[2], lines[3] = lines[3], lines[2]
    return lines


def forged_insert(lines: list[bytes]) -> list[bytes]:
    # A forger who recomputes prev and seq for the inserted line still breaks the next link.
    forged = json.loads(lines[2])
    forged.update(seq=json.loads(lines[3])["seq"], prev=hashlib.sha256(lines[2].rstrip(b"\n")).hexdigest())
    return [*lines[:3], json.dumps(forged, separators=(",", ":")).encode() + b"\n", *lines[3:]]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (edit_status, ":3: edited"),
        (lambda lines: lines[:2] + lines[3:], ":3: sequence 4, expected 3: 1 line(s) missing"),
        (lambda lines: lines[1:], ":1: the chain starts at sequence 2"),
        (swap_3_and_4, ":3: sequence 4, expected 3"),
        (lambda lines: [*lines[:5], lines[1], *lines[5:]], ":6: sequence 2, expected 6: a line moved or inserted"),
        (forged_insert, ":5: sequence 4, expected 5"),
        (lambda lines: [*lines[:-1], lines[-1][:20]], ":8: incomplete last line"),
        (lambda lines: [*lines[:4], b"not json\n", *lines[4:]], ":5: not a chained audit line"),
    ],
    ids=["edit", "delete", "delete-first", "reorder", "duplicate", "forged-insert", "truncate-mid-line", "garbage"],
)
def test_tampering_is_named(log: Path, change: Callable[[list[bytes]], list[bytes]], named: str) -> None:
    rewrite(log, change)
    result = verify(log)
    assert result.exit_code == 1
    assert f"{log}{named}" in result.output, result.output


def test_cut_whole_lines_are_caught_by_an_anchor(log: Path) -> None:
    head = verify(log).output.split("head ")[1].strip()
    assert verify(log, "--anchor", head).exit_code == 0
    rewrite(log, lambda lines: lines[:-2])
    assert verify(log).exit_code == 0  # a cut at a line boundary leaves a valid (shorter) chain...
    result = verify(log, "--anchor", head)
    assert result.exit_code == 1  # ...which the recorded head exposes
    assert f"anchor {head} not found" in result.output
    write_records(log, 3)  # and the server continuing the cut chain does not hide it
    assert verify(log, "--anchor", head).exit_code == 1


def test_restart_continues_the_chain_from_disk(log: Path) -> None:
    write_records(log, 5, start=8)
    result = verify(log)
    assert result.exit_code == 0, result.output
    assert "13 line(s) in 1 file(s), sequence 1..13" in result.output


def test_restart_cuts_a_torn_last_line_and_chains_on(log: Path) -> None:
    with log.open("ab") as handle:
        handle.write(b'{"seq":9,"prev":"ab')  # a crash in the middle of a write
    write_records(log, 2, start=8)
    assert "sequence 1..10" in verify(log).output


def test_rotation_keeps_one_chain_across_files(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    write_records(path, 20, max_bytes=1000, batch=2)
    write_records(path, 20, start=20, max_bytes=1000, batch=3)  # restart, rotation continues
    files = sorted(tmp_path.iterdir())
    rotated = [file for file in files if file != path]
    assert len(rotated) >= 5
    assert all(file.stat().st_size <= 1000 for file in rotated)
    last_seqs = [json.loads(lines_of(file)[-1])["seq"] for file in rotated]
    assert [file.name for file in rotated] == [f"audit.log.{seq:012d}" for seq in last_seqs]
    shuffled = files[:]
    random.Random(7).shuffle(shuffled)
    result = verify(*shuffled)
    assert result.exit_code == 0, result.output
    assert f"40 line(s) in {len(files)} file(s), sequence 1..40" in result.output
    missing = rotated[2]
    broken = verify(*(file for file in files if file != missing))
    assert broken.exit_code == 1
    assert "line(s) missing" in broken.output
    assert verify(*files[1:], "--partial").exit_code == 0


def test_restart_after_a_rotation_cut_short_chains_to_the_newest_rotated_file(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    write_records(path, 10, max_bytes=600)
    last_seq = json.loads(lines_of(path)[-1])["seq"]
    path.rename(tmp_path / f"audit.log.{last_seq:012d}")  # a crash between the rename and the new file
    write_records(path, 2, start=10, max_bytes=600)
    assert json.loads(lines_of(path)[0])["seq"] == last_seq + 1 == 11
    result = verify(*tmp_path.iterdir())
    assert result.exit_code == 0, result.output
    assert "sequence 1..12" in result.output


def test_a_real_server_writes_a_chain_that_survives_restart(tmp_path: Path) -> None:
    server = KMSServer(tmp_path / "kms", project_id="proj1")
    server.start()
    try:
        key = server.call("create_key", "audit-chain")
        data_key = server.call("create_data_key", key.key_id)
        server.call("list_keys")
    finally:
        server.stop()
    first_run = lines_of(server.audit_log)
    server.start()
    try:
        server.call("describe_key", key.key_id)
    finally:
        server.stop()
    result = verify(server.audit_log)
    assert result.exit_code == 0, result.output
    lines = lines_of(server.audit_log)
    assert lines[: len(first_run)] == first_run
    assert [json.loads(line)["seq"] for line in lines] == list(range(1, len(lines) + 1))
    assert len(lines) > len(first_run) >= 3
    assert data_key.plaintext is not None
    text = server.audit_log.read_text()
    for secret in (data_key.plaintext.hex(), data_key.plaintext.hex().upper()):
        assert secret not in text


def _write_from_a_process(path: str, start: int) -> None:
    write_records(Path(path), 150, start=start, max_bytes=4000, batch=3)


def test_several_processes_write_one_chain_across_rotations(tmp_path: Path) -> None:
    """The server's workers (issue 15): concurrent writers, rotations by any of them, one valid chain."""
    path = tmp_path / "audit.log"
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_write_from_a_process, args=(str(path), n * 1000)) for n in range(4)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(60)
        assert writer.exitcode == 0
    files = list(tmp_path.iterdir())
    assert len(files) > 10  # rotated many times, by several writers
    result = verify(*files)
    assert result.exit_code == 0, result.output
    assert f"600 line(s) in {len(files)} file(s), sequence 1..600" in result.output
    key_ids = {json.loads(line)["key_id"] for file in files for line in lines_of(file)}
    assert len(key_ids) == 600  # every record once: none lost, none written twice


def test_stdout_writers_share_the_head_through_the_head_file(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    head_file = tmp_path / "audit-head"
    first, second = AuditLog("-", head_file=head_file), AuditLog("-", head_file=head_file)
    for number, audit in enumerate([first, second, first, second]):
        audit.record(principal="admin", project_id="p", operation="describe-key", key_id=f"k{number}", result="ok",
                     request_id=f"r{number}", status=200)  # fmt: skip
        audit.flush()
    written = tmp_path / "stdout.log"
    written.write_text(capfd.readouterr().out)
    result = verify(written)
    assert result.exit_code == 0, result.output
    assert "sequence 1..4" in result.output


def test_a_line_nested_thousands_deep_is_named_not_a_crash(log: Path) -> None:
    rewrite(log, lambda lines: [*lines[:3], b"[" * 100_000 + b"\n", *lines[3:]])
    result = verify(log)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "audit.log:4: not a chained audit line" in result.output, result.output
