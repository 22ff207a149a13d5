"""The Cloud KMS API serves plaintext only on loopback (README): its bearer JWTs are replayable for up to an
hour, so a gcp.listen beyond loopback without tls_cert/tls_key stops the start with a reason, not a silent
plaintext listener on every interface."""

from __future__ import annotations

import time
from pathlib import Path

import yaml

from kubekms.devenv.processes import ManagedProcess, free_port, kubekms_argv, log_tail


def test_plaintext_beyond_loopback_is_refused(tmp_path: Path) -> None:
    principals = tmp_path / "principals.yaml"
    principals.write_text(yaml.safe_dump([{"name": "admin", "access_key": "AKRED", "secret_key": "sk-red"}]))
    principals.chmod(0o600)
    grpc_port = free_port()
    config = tmp_path / "server.yaml"
    settings = {"listen": f"127.0.0.1:{free_port()}", "state_dir": "state", "workers": 1,
                "principals_file": "principals.yaml", "gcp": {"listen": f"0.0.0.0:{grpc_port}"}}  # fmt: skip
    config.write_text(yaml.safe_dump(settings))
    process = ManagedProcess("kubekms-server", [*kubekms_argv("server", "--config", str(config)), "--init"],
                             tmp_path / "server.log")  # fmt: skip
    process.start()
    try:
        deadline = time.monotonic() + 60
        while process.running and "Cloud KMS gRPC API listening" not in log_tail(process.log_path):
            assert time.monotonic() < deadline, log_tail(process.log_path)
            time.sleep(0.05)
        code = process.process.returncode if process.process is not None else None
    finally:
        process.stop()
    assert code != 0, log_tail(process.log_path)
    assert "Cloud KMS gRPC API listening" not in log_tail(process.log_path)
    assert "tls_cert" in log_tail(process.log_path)
