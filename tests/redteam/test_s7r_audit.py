"""Two worker processes under concurrent reads and writes, one of them killed with SIGKILL mid-load.

Every worker appends to the one log under a file lock (README, Worker processes): whatever the
overlap and the kill, the file must stay one hash chain of whole lines that ``kubekms audit verify``
accepts, holding every call answered after the kill had been replaced, and the records of the
survivors from before it; and a change made after the kill still holds in every worker at once.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "keystore_pg"))
from race_support import aws_error, fire, workers

from kubekms.cli.main import cli
from kubekms.devenv.processes import wait_for

LOAD_SECONDS = 2.5
THREADS = 6


def worker_pids(server_pid: int) -> set[int]:
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    return {int(pid) for pid in children}


def test_the_chain_verifies_after_a_worker_is_killed_mid_load(tmp_path: Path) -> None:
    with workers(tmp_path) as server:
        assert server.pid is not None
        key = server.aws_client().create_key(Description="audited")["KeyMetadata"]["KeyId"]
        clients = [server.aws_client(max_attempts=None) for _ in range(THREADS)]  # retries: a killed worker's calls
        answered = [0] * THREADS
        stop = threading.Event()

        def load(number: int) -> int:
            """Reads and writes: a worker killed inside a write transaction leaves the change counter odd."""
            while not stop.is_set():
                clients[number].encrypt(KeyId=key, Plaintext=b"x", EncryptionContext={"n": str(number)})
                answered[number] += 1
                if number % 2:
                    clients[number].tag_resource(KeyId=key, Tags=[{"TagKey": f"t{number}", "TagValue": "v"}])
            return answered[number]

        def kill_one() -> int:
            wait_for(lambda: sum(answered) >= 50, 30, "the load under way")
            victim = min(worker_pids(server.pid or 0))
            os.kill(victim, signal.SIGKILL)
            wait_for(lambda: victim not in worker_pids(server.pid or 0) and len(worker_pids(server.pid or 0)) == 2,
                     30, "the worker replaced")  # fmt: skip
            stop_at = time.monotonic() + LOAD_SECONDS
            wait_for(lambda: time.monotonic() >= stop_at and sum(answered) > 0, LOAD_SECONDS + 30, "the load")
            stop.set()
            return victim

        outcomes: list[Any] = fire([kill_one, *(lambda n=n: load(n) for n in range(THREADS))])
        stop.set()
        assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
        server.aws_client().disable_key(KeyId=key)  # then every worker, the new one too, refuses at once
        refusals = fire([lambda: server.aws_client().encrypt(KeyId=key, Plaintext=b"x") for _ in range(8)])
        assert {aws_error(refusal) for refusal in refusals} == {"DisabledException"}, refusals
    # stopped with SIGTERM: the survivors flushed everything
    lines = server.audit_log.read_bytes().splitlines()
    records = [json.loads(line) for line in lines]  # whole lines only: one torn or interleaved line fails here
    encrypts = sum(1 for record in records if record["operation"] == "aws:Encrypt")
    assert sum(answered) - encrypts <= sum(answered) // 4, (sum(answered), encrypts)  # lost: the victim's last 0.2 s
    result = CliRunner().invoke(cli, ["audit", "verify", str(server.audit_log)])
    assert result.exit_code == 0, result.output
    print(f"answered {sum(answered)}, audited {encrypts}, {len(lines)} lines")
