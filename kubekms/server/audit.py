"""The audit log: one JSON line per call, each line chained to the one before it by a hash.

Lines are buffered in memory and written by :meth:`AuditLog.flush` (the server flushes on a
short timer and at shutdown) so the request path does no file IO of its own. Callers pass
only identifiers and codes: never key material.

Integrity (in the manner of CloudTrail's log-file validation): every line carries ``seq``
(1, 2, 3, ... over the whole life of the log) and ``prev``, the SHA-256 (hex) of the bytes of
the line before it without its newline; the first line ever has ``prev`` = 64 zeros. Editing,
deleting, inserting or reordering a line breaks the chain at that point, which
:func:`verify_chain` (``kubekms audit verify``) reports. A chain proves order and
completeness, not authorship, and the newest line has no successor to vouch for it: record the
head that ``verify`` prints and pass it back as an anchor to detect later truncation.

Rotation: when writing a batch would take the file past ``max_bytes``, the file is renamed to
``<path>.<seq of its last line, 12 digits>`` and a new file is started; the chain runs on
across files. A restarted server continues from the last line on disk (the current file, or
the newest rotated file when the current one is empty or missing).

Several writers (the server's worker processes, issue 15): every flush takes an exclusive
``flock`` on the current file (reopening it when another writer rotated it), cuts a torn last
line (a writer killed mid-write), reads the head from the file's last line, chains its batch on
and appends it in one write, so lines never interleave and the chain stays one sequence. The
lock is released by the kernel when a holder dies (kill -9 included). A batch costs one lock,
one ``fstat``/``stat`` and one tail read besides the write. Records still in memory when a
process is killed (up to one flush interval) are lost; written lines are not.
Standard output (``-``) cannot be read back: with several writers they share the head through
``head_file`` (seq and digest, rewritten under a lock on that file).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import BinaryIO

from kubekms.errors import Unavailable

log = logging.getLogger("kubekms.server.audit")

GENESIS = "0" * 64
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
_ROTATED_SUFFIX = re.compile(r"\.([0-9]{12,})")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_TAIL_CHUNK = 4096
# records kept while the file cannot be written (a full disk); calls are refused then (check_writable), so only
# the records of those refusals, past this many, are counted instead of kept
MAX_PENDING = 100_000


_text = encode_basestring_ascii  # a JSON string as json.dumps writes it by default (ASCII, the rest escaped)


# one record: time (epoch seconds), (principal, project, operation, key id, result, status), request id
_Fields = tuple[str, str, str, str, str, int]
_Record = tuple[float, _Fields, str]
# a client calls the same operation on the same key again and again: the middle of its lines, formatted once
_MIDDLES_KEPT = 1024
_MILLISECONDS = [f"{n:03d}" for n in range(1000)]


def line_digest(line: bytes) -> str:
    """SHA-256 (hex) of one audit line, without its newline: the next line's ``prev``."""
    return hashlib.sha256(line).hexdigest()


@dataclass(frozen=True)
class ChainHead:
    """The newest line of a chain: its sequence number and digest (seq 0 + GENESIS: empty chain)."""

    seq: int
    digest: str


def chain_fields(line: bytes) -> tuple[int, str] | None:
    """``(seq, prev)`` of a well-formed audit line, or None."""
    try:
        entry = json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: a hostile line nested thousands deep
        return None
    if not isinstance(entry, dict):
        return None
    seq, prev = entry.get("seq"), entry.get("prev")
    if type(seq) is not int or seq < 1 or not isinstance(prev, str) or not _HEX64.fullmatch(prev):
        return None
    return seq, prev


def _rfind_newline(handle: BinaryIO, before: int) -> int:
    """Offset of the last newline strictly before ``before``, -1 when there is none."""
    position = before
    while position > 0:
        step = min(_TAIL_CHUNK, position)
        position -= step
        handle.seek(position)
        index = handle.read(step).rfind(b"\n")
        if index >= 0:
            return position + index
    return -1


def _last_line(path: Path) -> bytes | None:
    """The last complete line of ``path`` (without newline), None when there is none."""
    try:
        with path.open("rb") as handle:
            end = _rfind_newline(handle, handle.seek(0, os.SEEK_END))
            if end < 0:
                return None
            start = _rfind_newline(handle, end) + 1
            handle.seek(start)
            return handle.read(end - start)
    except FileNotFoundError:
        return None


def _rotated_files(path: Path) -> list[Path]:
    """Rotated siblings of ``path``, oldest first."""
    found = []
    for sibling in path.parent.glob(path.name + ".*"):
        match = _ROTATED_SUFFIX.fullmatch(sibling.name[len(path.name) :])
        if match:
            found.append((int(match.group(1)), sibling))
    return [sibling for _, sibling in sorted(found)]


def _head_after(line: bytes | None) -> ChainHead | None:
    if line is None:
        return None
    fields = chain_fields(line)
    # A line written before chaining existed: chain on from its bytes, starting the count at 1.
    return ChainHead(fields[0] if fields else 0, line_digest(line))


def resume_head(path: Path) -> ChainHead:
    """Where the chain of the log at ``path`` ends on disk (current file, then rotated ones)."""
    head = _head_after(_last_line(path))
    if head is None:
        rotated = _rotated_files(path)
        head = _head_after(_last_line(rotated[-1])) if rotated else None
    return head or ChainHead(0, GENESIS)


def _drop_torn_tail(fd: int, path: Path) -> None:
    """Cut an incomplete last line (a crash or a full disk during a write): it was never a line."""
    size = os.fstat(fd).st_size
    with path.open("rb") as handle:
        keep = _rfind_newline(handle, size) + 1
    if keep < size:
        log.warning("audit log ended in an incomplete line; cut it", extra={"fields": {"bytes": size - keep}})
        os.ftruncate(fd, keep)


class AuditLog:
    def __init__(self, destination: str, *, max_bytes: int = DEFAULT_MAX_BYTES, head_file: Path | None = None) -> None:
        """``destination`` is a file path (appended, created 0600) or ``-`` for stdout.

        ``max_bytes``: size (bytes) past which the file is rotated before the next batch.
        ``head_file``: for ``-`` written by several processes, where they share the chain's head.
        """
        self._pending: list[_Record] = []  # records to write (see record)
        self._second, self._second_formatted = -1, ""
        self._middles: dict[tuple[str, str, str, str, str, int], str] = {}  # principal ... status: their text
        self._max_bytes = max_bytes
        self._path: Path | None
        self._head_file = head_file if destination == "-" else None
        self._head = ChainHead(0, GENESIS)
        self._write_error: str | None = None
        self._dropped = 0  # records not kept (MAX_PENDING), reported once a write succeeds
        if destination == "-":
            self._path, self._fd = None, 1
        else:
            self._path = Path(destination)
            # made private like state_dir: the log names keys and principals
            self._path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._fd = self._open()
            with self._locked():
                pass  # cuts a torn last line

    @property
    def path(self) -> Path | None:
        """The current file (None: standard output); readers such as the web console's audit page use it."""
        return self._path

    @property
    def write_error(self) -> str | None:
        """Why the last flush failed (``OSError: [Errno 28] No space left on device``); None once one succeeds."""
        return self._write_error

    @property
    def pending(self) -> int:
        """Records not yet written."""
        return len(self._pending)

    @property
    def dropped(self) -> int:
        """Records not kept while the file could not be written, since the last successful write."""
        return self._dropped

    def check_writable(self) -> None:
        """Unavailable (retryable) while the last write failed: no call is served that its record may not follow."""
        if self._write_error is not None:
            raise Unavailable("the server cannot write its audit log; calls are refused until it can")

    def _open(self) -> int:
        assert self._path is not None
        # O_NOFOLLOW: a symlink planted at the path (audit.log -> /etc/...) is refused (ELOOP), never appended to
        return os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Exclusive ``flock`` on the current file (or the shared head file), following rotations; then catch up."""
        if self._path is None:
            if self._head_file is None:
                yield
                return
            head_fd = os.open(self._head_file, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(head_fd, fcntl.LOCK_EX)
                self._head = _read_head_file(self._head_file)
                yield
            finally:
                os.close(head_fd)  # releases the lock
            return
        self._lock_current()
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _lock_current(self) -> None:
        """Hold an exclusive ``flock`` on the file now at the path, then catch up with its chain.

        Only the holder of the current file's lock writes to it or renames it, so once the file
        locked is the one at the path, nobody else can move it away before we unlock.
        """
        assert self._path is not None
        while True:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                current = os.stat(self._path).st_ino == os.fstat(self._fd).st_ino
            except FileNotFoundError:
                current = False
            if current:
                break
            os.close(self._fd)  # another writer rotated the file: lock the new one
            self._fd = self._open()
        _drop_torn_tail(self._fd, self._path)
        self._head = resume_head(self._path)

    def record(
        self,
        *,
        principal: str,
        project_id: str,
        operation: str,
        key_id: str,
        result: str,
        request_id: str,
        status: int,
    ) -> None:
        # the fields only: the line is written by flush, all of a batch in one loop (formatting them here, amid
        # the rest of a request, cost twice as much)
        if len(self._pending) >= MAX_PENDING:
            self._dropped += 1
            return
        self._pending.append((time.time(), (principal, project_id, operation, key_id, result, int(status)), request_id))

    def _middle(self, fields: _Fields) -> str:
        """The text of a line between its time and its request id, formatted once for the calls that repeat it."""
        if len(self._middles) >= _MIDDLES_KEPT:  # bounded, whatever keys and principals come
            self._middles.clear()
        principal, project_id, operation, key_id, result, status = fields
        middle = self._middles[fields] = (
            f'"principal":{_text(principal)},"project":{_text(project_id)},"operation":{_text(operation)},'
            f'"key_id":{_text(key_id)},"result":{_text(result)},"status":{status},"request_id":'
        )
        return middle

    def _second_text(self, now: float) -> str:
        """``now``'s UTC second as text, formatted once per second (every record asks)."""
        second = int(now)
        if second != self._second:
            self._second, self._second_formatted = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return self._second_formatted

    def _chain(self, records: Iterable[_Record]) -> bytes:
        """The records' lines, chained on from the head, as json.dumps(..., separators=(",", ":")) would write them
        (ASCII, escaped by json's own escaper) in a fifth of its time: one dumps per record was 5 % of the server's
        CPU. One loop formats and hashes each line (1.55 -> 1.1 µs a record)."""
        seq, digest = self._head.seq, self._head.digest
        lines: list[bytes] = []
        append, sha256, middles = lines.append, hashlib.sha256, self._middles
        second, second_text = -1, ""
        for now, fields, request_id in records:
            if int(now) != second:
                second, second_text = int(now), self._second_text(now)
            seq += 1
            line = (f'{{"seq":{seq},"prev":"{digest}","time":"{second_text}.{_MILLISECONDS[int(now * 1000) % 1000]}Z",'
                    f'{middles.get(fields) or self._middle(fields)}{_text(request_id)}}}').encode()  # fmt: skip
            digest = sha256(line).hexdigest()
            append(line)
        self._head = ChainHead(seq, digest)
        if not lines:
            return b""
        lines.append(b"")
        return b"\n".join(lines)

    def flush(self) -> None:
        """Write the buffered records; on a failed write they stay buffered and nothing of them stays on disk."""
        if not self._pending:
            return
        try:
            self._write_pending()
        except OSError as error:
            self._write_error = f"{type(error).__name__}: {error.strerror or error}"
            raise
        self._write_error = None
        if self._dropped:
            log.error("audit records of calls refused while the audit log could not be written were not kept",
                      extra={"fields": {"records": self._dropped}})  # fmt: skip
            self._dropped = 0

    def _write_pending(self) -> None:
        with self._locked():
            written_seq = self._head.seq
            data = self._chain(self._pending)
            if self._rotation_due(len(data)):
                self._rotate(written_seq)
                data = self._chain(self._pending)  # from the head as it is on disk after the rotation
            size = os.fstat(self._fd).st_size if self._path is not None else 0
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view) :]
            except OSError:
                if self._path is not None:
                    with contextlib.suppress(OSError):  # if this fails too, the next flush cuts the torn line
                        os.ftruncate(self._fd, size)
                raise
            if self._head_file is not None:
                _write_head_file(self._head_file, self._head)
        self._pending.clear()

    def _rotation_due(self, incoming: int) -> bool:
        if self._path is None:
            return False
        size = os.fstat(self._fd).st_size
        return size > 0 and size + incoming > self._max_bytes

    def _rotate(self, written_seq: int) -> None:
        assert self._path is not None
        target = self._path.with_name(f"{self._path.name}.{written_seq:012d}")
        if target.exists():
            raise FileExistsError(f"audit log rotation: {target} exists already")
        os.rename(self._path, target)
        os.close(self._fd)
        # Other writers may create the new file, write to it and even rotate it before we get its
        # lock: lock whatever file is current then, and chain on from its head.
        self._fd = self._open()
        self._lock_current()

    def close(self) -> None:
        self.flush()
        if self._path is not None:
            os.close(self._fd)


def _read_head_file(path: Path) -> ChainHead:
    """The shared head; anything but ``<seq> <64 hex>`` is none (the digest goes into the next line unescaped)."""
    try:
        seq, digest = path.read_text().split()
        if not seq.isascii() or _HEX64.fullmatch(digest) is None:
            raise ValueError("not a chain head")
        return ChainHead(int(seq), digest)
    except (FileNotFoundError, ValueError):
        return ChainHead(0, GENESIS)


def _write_head_file(path: Path, head: ChainHead) -> None:
    path.write_text(f"{head.seq} {head.digest}\n")


# ---------------------------------------------------------------------------- verification


@dataclass(frozen=True)
class ChainBreak:
    """One place where the chain does not hold: ``file:line: reason``."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class ChainReport:
    files: int = 0
    lines: int = 0
    first_seq: int | None = None
    head: ChainHead | None = None
    breaks: list[ChainBreak] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks


@dataclass(frozen=True)
class _Located:
    file: str
    line: int
    raw: bytes
    fields: tuple[int, str] | None


def _read_lines(path: Path, report: ChainReport) -> list[_Located]:
    data = path.read_bytes()
    pieces = data.split(b"\n")
    if pieces[-1]:
        report.breaks.append(
            ChainBreak(str(path), len(pieces), "incomplete last line (no newline): the file was truncated")
        )
    return [_Located(str(path), number, raw, chain_fields(raw)) for number, raw in enumerate(pieces[:-1], start=1)]


def _first_seq(lines: list[_Located]) -> int:
    return next((line.fields[0] for line in lines if line.fields), 0)


def _check_link(previous: _Located | None, current: _Located, *, partial: bool) -> ChainBreak | None:
    assert current.fields is not None
    seq, prev = current.fields
    if previous is None:
        if seq == 1 and prev != GENESIS:
            return ChainBreak(current.file, current.line, "sequence 1 does not start from the genesis value")
        if seq != 1 and not partial:
            return ChainBreak(
                current.file,
                current.line,
                f"the chain starts at sequence {seq}, not 1: earlier lines are missing "
                "(give the rotated files too, or --partial)",
            )
        return None
    if previous.fields is not None:
        expected = previous.fields[0] + 1
        if seq > expected:
            return ChainBreak(
                current.file, current.line, f"sequence {seq}, expected {expected}: {seq - expected} line(s) missing"
            )
        if seq < expected:
            return ChainBreak(
                current.file, current.line, f"sequence {seq}, expected {expected}: a line moved or inserted here"
            )
    if prev != line_digest(previous.raw):
        return ChainBreak(
            previous.file, previous.line, f"edited: its hash is not the prev recorded by the next line ({seq})"
        )
    return None


def verify_chain(paths: Sequence[Path], *, anchor: str | None = None, partial: bool = False) -> ChainReport:
    """Check the hash chain over ``paths`` (any order: files are put in sequence order).

    ``anchor``: the digest of a head recorded earlier; the chain must still contain that line
    (catches whole lines cut from the end). ``partial``: the first line may continue an older
    file that is no longer available.
    """
    report = ChainReport(files=len(paths))
    per_file = [_read_lines(path, report) for path in paths]
    ordered = [line for lines in sorted(per_file, key=_first_seq) for line in lines]
    previous: _Located | None = None
    anchor_seen = False
    for current in ordered:
        report.lines += 1
        if current.fields is None:
            report.breaks.append(ChainBreak(current.file, current.line, "not a chained audit line (seq, prev)"))
            continue
        broken = _check_link(previous, current, partial=partial)
        if broken is not None:
            report.breaks.append(broken)
        if report.first_seq is None:
            report.first_seq = current.fields[0]
        digest = line_digest(current.raw)
        anchor_seen = anchor_seen or digest == anchor
        report.head = ChainHead(current.fields[0], digest)
        previous = current
    if anchor is not None and not anchor_seen:
        report.breaks.append(
            ChainBreak(
                str(paths[-1]) if paths else "-",
                0,
                f"anchor {anchor} not found: lines at or before it were cut or edited",
            )
        )
    return report
