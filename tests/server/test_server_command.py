"""``kubekms server --config``: TLS, the plain-HTTP warning, refusals at start, graceful SIGTERM."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
import yaml
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.http.http_config import HttpConfig
from huaweicloudsdkkms.v2 import CreateKeyRequest, CreateKeyRequestBody, KmsClient

from kubekms.devenv.pki import generate_pki
from kubekms.devenv.processes import ManagedProcess, free_port, kubekms_argv, log_tail

AK, SK = "AKCLITEST", "sk-cli-test-secret"


def write_setup(tmp_path: Path, listen: str, **settings: object) -> Path:
    principals = tmp_path / "principals.yaml"
    principals.write_text(yaml.safe_dump([{"name": "admin", "access_key": AK, "secret_key": SK}]))
    principals.chmod(0o600)
    config = tmp_path / "server.yaml"
    config.write_text(
        yaml.safe_dump({"listen": listen, "state_dir": "state", "principals_file": "principals.yaml", **settings})
    )
    return config


def server_process(tmp_path: Path, config: Path, *flags: str) -> ManagedProcess:
    argv = kubekms_argv("server", "--config", str(config))
    return ManagedProcess("kubekms-server", [*argv, *flags], tmp_path / "server.log")


def test_tls_serves_the_sdk_and_sigterm_stops_gracefully(tmp_path: Path) -> None:
    pki = generate_pki(tmp_path / "pki")
    port = free_port()
    config = write_setup(
        tmp_path,
        f"127.0.0.1:{port}",
        tls_cert=str(pki.serving_cert),
        tls_key=str(pki.serving_key),
        audit_log="audit.log",
    )
    process = server_process(tmp_path, config, "--init")
    process.start()
    try:
        process.wait_until(lambda: "listening" in log_tail(process.log_path), 60, "listening")
        http_config = HttpConfig.get_default_config()
        http_config.ssl_ca_cert = str(pki.ca_cert)
        client = (
            KmsClient.new_builder()
            .with_http_config(http_config)
            .with_credentials(BasicCredentials(AK, SK, "tls"))
            .with_endpoint(f"https://127.0.0.1:{port}")
            .build()
        )
        created = client.create_key(CreateKeyRequest(body=CreateKeyRequestBody(key_alias="over-tls")))
        assert created.key_info.key_id
        assert process.process is not None
        process.process.send_signal(signal.SIGTERM)
        assert process.process.wait(timeout=30) == 0
    finally:
        process.kill()
    events = [json.loads(line) for line in process.log_path.read_text().splitlines() if line.startswith("{")]
    assert any(e["message"] == "kubekms server listening" and e["url"].startswith("https://") for e in events)
    assert events[-1]["message"] == "kubekms server stopped"
    assert not any(e["level"] == "warning" for e in events)
    audit = [json.loads(line) for line in (tmp_path / "audit.log").read_text().splitlines()]
    assert [(e["operation"], e["result"], e["project"]) for e in audit] == [("create-key", "OK", "tls")]
    assert (tmp_path / "audit.log").stat().st_mode & 0o777 == 0o600


def test_plain_http_beyond_loopback_warns(tmp_path: Path) -> None:
    process = server_process(tmp_path, write_setup(tmp_path, f"0.0.0.0:{free_port()}"), "--init")
    process.start()
    try:
        process.wait_until(lambda: "listening" in log_tail(process.log_path), 60, "listening")
    finally:
        process.stop()
    warnings = [
        json.loads(line)
        for line in process.log_path.read_text().splitlines()
        if line.startswith("{") and '"warning"' in line
    ]
    assert warnings and "plain HTTP" in warnings[0]["message"]


@pytest.mark.parametrize(
    ("prepare", "flags", "message"),
    [
        (lambda tmp: (tmp / "principals.yaml").chmod(0o644), ("--init",), "chmod 600"),
        (lambda tmp: None, (), "start once with --init"),
        (lambda tmp: (tmp / "principals.yaml").write_text("- name: x\n"), ("--init",), "access_key"),
        (lambda tmp: (tmp / "server.yaml").write_text("listen: nowhere\n"), ("--init",), "HOST:PORT"),
    ],
)
def test_refusals_at_start_are_one_clear_line(tmp_path: Path, prepare, flags: tuple[str, ...], message: str) -> None:
    config = write_setup(tmp_path, f"127.0.0.1:{free_port()}")
    prepare(tmp_path)
    process = server_process(tmp_path, config, *flags)
    process.start()
    assert process.process is not None
    assert process.process.wait(timeout=60) == 2
    log = process.log_path.read_text()
    assert message in log and "Traceback" not in log
    assert SK not in log
