"""Request ids: version 4 UUIDs on the AWS wire, their 32 hex digits on the v1.0 wire: random, never repeated."""

from __future__ import annotations

import os
import re
import uuid

from kubekms.server.pipeline import REQUEST_IDS, RequestIds

HEX32 = re.compile(r"[0-9a-f]{32}")


def test_ids_are_version_4_uuids_and_32_hex_digits_never_repeated() -> None:
    ids = RequestIds()
    made = [ids.uuid() for _ in range(1000)] + [ids.hex() for _ in range(1000)]
    for value in made[:1000]:
        parsed = uuid.UUID(value)
        assert str(parsed) == value and parsed.version == 4 and parsed.variant == uuid.RFC_4122
    assert all(HEX32.fullmatch(value) for value in made[1000:])
    assert len({value.replace("-", "") for value in made}) == len(made)


def test_consecutive_ids_tell_nothing_of_the_requests_between() -> None:
    """Two ids seen by one client (e.g. two /healthz answers) differ in their random bits, not by a count."""
    ids = RequestIds()
    first, second = (int(ids.hex(), 16) for _ in range(2))
    assert abs(second - first) > 2**64  # a counter would differ by the number of requests in between


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    read_end, write_end = os.pipe()
    parent_next = REQUEST_IDS.hex(), REQUEST_IDS.uuid()  # both forms hold unused ids now
    pid = os.fork()
    if pid == 0:  # the child: the parent's unused random bytes are gone
        os.write(write_end, f"{REQUEST_IDS.hex()} {REQUEST_IDS.uuid()}".encode())
        os._exit(0)
    os.close(write_end)
    child_hex, child_uuid = os.read(read_end, 128).decode().split()
    os.close(read_end)
    os.waitpid(pid, 0)
    assert HEX32.fullmatch(child_hex) and uuid.UUID(child_uuid).version == 4
    assert child_hex not in (parent_next[0], REQUEST_IDS.hex())
    assert child_uuid not in (parent_next[1], REQUEST_IDS.uuid())
