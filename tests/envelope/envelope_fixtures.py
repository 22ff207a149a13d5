"""Helpers of the envelope tests: keys, ARNs, the server's data-key call counter, config files."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import botocore.session
import yaml
from aws_encryption_sdk import StrictAwsKmsMasterKeyProvider
from prometheus_client.parser import text_string_to_metric_families

from kubekms.devenv.kmsserver import KMSServer
from kubekms.providers import BackendConfig, open_backend

AWS_REGION = "eu-central-1"
HUAWEI_PROJECT = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
PROVIDERS = ("local", "kubekms", "huaweicloud", "aws", "gcp")
_names = itertools.count()
KUBEKMS = shutil.which("kubekms") or str(Path(__file__).parents[2] / ".venv" / "bin" / "kubekms")


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    environment = {name: value for name, value in os.environ.items() if not name.startswith("KUBEKMS_")}
    return subprocess.run([KUBEKMS, *args], input=stdin, capture_output=True, timeout=60, env=environment)


def call(config: BackendConfig, operation: str, *args: object) -> object:
    """One backend-protocol call (test set-up: create, disable keys)."""

    async def run() -> object:
        backend = await open_backend(config)
        try:
            return await getattr(backend, operation)(*args)
        finally:
            await backend.close()

    return asyncio.run(run())


def new_key(config: BackendConfig) -> tuple[str, str]:
    """A fresh enabled key: (alias, key id)."""
    alias = f"envelope-{config.provider}-{next(_names)}"
    metadata = call(config, "create_key", alias)
    return alias, metadata.key_id  # type: ignore[attr-defined]


def aws_arn(key_id: str) -> str:
    return f"arn:aws:kms:{AWS_REGION}:default:key/{key_id}"


def aws_config(server: KMSServer) -> BackendConfig:
    """Provider ``aws`` on ``server``'s AWS KMS wire, as admin."""
    return BackendConfig(
        provider="aws", endpoint=server.endpoint, region=AWS_REGION, credentials_file=server.credentials_file("admin")
    )


def plain_sdk_provider(server: KMSServer, key_id: str) -> StrictAwsKmsMasterKeyProvider:
    """The plain AWS Encryption SDK's AWS KMS provider for one key of ``server``, reached as any AWS
    application would: the caller points ``AWS_ENDPOINT_URL_KMS`` at the server (botocore reads it)."""
    credentials = yaml.safe_load(server.credentials_file("admin").read_text())
    session = botocore.session.Session()
    session.set_credentials(credentials["access_key"], credentials["secret_key"])
    return StrictAwsKmsMasterKeyProvider(key_ids=[aws_arn(key_id)], botocore_session=session)


def data_key_calls(server: KMSServer) -> int:
    """Data-key operations the server answered so far (its own Prometheus counters)."""
    with urllib.request.urlopen(f"{server.endpoint}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "kubekms_server_requests_total" and "datakey" in sample.labels.get("operation", "")
        )
    )


def write_yaml(path: Path, config: BackendConfig) -> Path:
    fields = {
        "provider": config.provider,
        "endpoint": config.endpoint,
        "project_id": config.project_id,
        "region": config.region,
        "credentials_file": str(config.credentials_file) if config.credentials_file else "",
        "state_dir": str(config.state_dir) if config.state_dir else "",
    }
    path.write_text(yaml.safe_dump(fields))
    return path


MiB = 1 << 20
# The CLI in-process, then its peak RSS in KiB on stderr's last line. VmHWM, not getrusage's ru_maxrss:
# Linux carries ru_maxrss over from the parent through fork and exec, so a large parent would hide it.
MEASURED_CLI = """
import sys
from kubekms.cli.main import cli
try:
    cli(sys.argv[1:], standalone_mode=False)
finally:
    status = open("/proc/self/status").read()
    print(status.split("VmHWM:")[1].split()[0], file=sys.stderr)
"""


def peak_rss(*args: str) -> int:
    done = subprocess.run([sys.executable, "-c", MEASURED_CLI, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return int(done.stderr.strip().splitlines()[-1]) * 1024


def write_random(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    block = hashlib.sha256(path.name.encode()).digest() * (MiB // 32)  # fast, incompressible enough per MiB
    with path.open("wb") as handle:
        for index in range(size // MiB):
            chunk = index.to_bytes(8, "big") + block[8:]
            handle.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(MiB):
            digest.update(chunk)
    return digest.hexdigest()


def streaming_peak_rss(directory: Path, size: int) -> tuple[int, int, int]:
    """Peak RSS (bytes) of ``kubekms encrypt`` on a 1 MiB file, then of encrypt and decrypt on a file
    of ``size`` bytes (provider local, each a process of its own); the round trip is checked."""
    config = BackendConfig(provider="local", state_dir=directory / "keystore", init=True)
    call(config, "create_key", "memory")
    options = ["--backend-config", str(write_yaml(directory / "local.yaml", config))]
    small, large = directory / "small", directory / "large"
    write_random(small, 1 * MiB)
    expected = write_random(large, size)
    baseline = peak_rss("encrypt", *options, "--key", "memory", str(small), str(directory / "small.enc"))
    encrypting = peak_rss("encrypt", *options, "--key", "memory", str(large), str(directory / "large.enc"))
    large.unlink()
    decrypting = peak_rss("decrypt", *options, str(directory / "large.enc"), str(directory / "large.out"))
    assert sha256_of(directory / "large.out") == expected
    return baseline, encrypting, decrypting
