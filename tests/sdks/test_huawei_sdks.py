"""Huawei's official KMS SDKs of Go, Java and Node.js, unchanged, against the server's v1.0 wire.

Each SDK is configured as a user would (README "The kubekms server"): AK/SK basic credentials with a project id,
the endpoint overridden to the server, the SDK's own HTTP client, retries and SDK-HMAC-SHA256 signing. Programs:
tests/sdks/huawei/go (github.com/huaweicloud/huaweicloud-sdk-go-v3, services/kms/v2), tests/sdks/huawei/java
(com.huaweicloud.sdk:huaweicloud-sdk-kms, run as a single source file) and tests/sdks/huawei/node
(@huaweicloud/huaweicloud-sdk-core: Huawei's KMS package for Node.js is not on the npm registry, so the program
hands the core's client each request as that package builds it). Each runs the same steps and prints one JSON
line per step, asserted here.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import toolchains

from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import wait_for

pytestmark = pytest.mark.sdks

PROGRAMS = Path(__file__).parent / "huawei"
PROJECT = "proj-hw"
PREFIX = "sdk"
RUN_SECONDS = 180.0
REQUEST_ID = re.compile(r"[0-9a-f]{32}")
DAY_MS = 86_400_000


Command = tuple[list[str], dict[str, str]]  # argv and the environment it needs beside the server's


def _go_command() -> Command:
    return [str(toolchains.go_binary(PROGRAMS / "go"))], {}


def _node_command() -> Command:
    node = shutil.which("node")
    if node is None:
        pytest.skip("`node` is not installed")
    modules = toolchains.node_modules(PROGRAMS / "node")
    return [node, str(PROGRAMS / "node" / "main.js")], {"NODE_PATH": str(modules)}


def _java_command() -> Command:
    java = shutil.which("java")
    if java is None:
        pytest.skip("`java` is not installed")
    classpath = toolchains.java_classpath(PROGRAMS / "java")
    return [java, "-cp", classpath, str(PROGRAMS / "java" / "Scenario.java")], {}


@dataclass(frozen=True)
class Sdk:
    label: str  # as the program names itself in key descriptions and plaintexts
    command: Callable[[], Command]
    client_error: str  # the SDK's error class for a 4xx answer


SDKS = {
    "go": Sdk("Go", _go_command, "ServiceResponseError"),  # the Go SDK has one class for every answered error
    "java": Sdk("Java", _java_command, "ClientRequestException"),
    "node": Sdk("Node.js", _node_command, "ClientRequestException"),
}


@dataclass(frozen=True)
class Run:
    sdk: Sdk
    server: KMSServer
    steps: dict[str, dict[str, Any]]
    started_ms: int
    ended_ms: int
    closed_connections: int | None  # TCP connections to the server closed in the run (None: no `ss` here)

    def ok(self, step: str) -> dict[str, Any]:
        line = self.steps.get(step)
        assert line is not None, f"{self.sdk.label}: step {step} did not run"
        assert "ok" in line, f"{self.sdk.label}: step {step} failed: {line.get('error')}"
        answer: dict[str, Any] = line["ok"]
        return answer

    def refused(self, step: str, status: int, code: str) -> dict[str, Any]:
        line = self.steps.get(step)
        assert line is not None, f"{self.sdk.label}: step {step} did not run"
        error: dict[str, Any] | None = line.get("error")
        assert error is not None, f"{self.sdk.label}: step {step} succeeded: {line.get('ok')}"
        assert (error["type"], error["status"], error["code"]) == (self.sdk.client_error, status, code), error
        assert REQUEST_ID.fullmatch(error["request_id"]), error  # X-Request-Id reaches the SDK's error
        return error


@pytest.fixture(scope="module", params=sorted(SDKS))
def run(request: pytest.FixtureRequest, kms_server_factory: Any, sdk_env: Any) -> Iterator[Run]:
    """One SDK's whole scenario on a server of its own (list-keys totals and quotas are then exact)."""
    sdk = SDKS[request.param]
    argv, env = sdk.command()
    server = kms_server_factory(project_id=PROJECT)
    started_ms = int(time.time() * 1000)
    lines = toolchains.run_json_lines(argv, {**sdk_env(server), **env, "KMS_PREFIX": PREFIX}, timeout=RUN_SECONDS)
    ended_ms = int(time.time() * 1000)
    steps = {line["step"]: line for line in lines}
    assert len(steps) == len(lines), "a step printed twice"
    yield Run(sdk, server, steps, started_ms, ended_ms, _closed_connections(server.port))


def _closed_connections(port: int) -> int | None:
    """Connections to ``port`` closed within the last minute: each leaves one socket in TIME-WAIT (on whichever
    side closed first), and nothing else connects to this test's server."""
    ss = shutil.which("ss")
    if ss is None:
        return None
    argv = [ss, "-tanH", "state", "time-wait", f"( sport = :{port} or dport = :{port} )"]
    listed = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout
    return len(listed.splitlines())


def test_keys_are_created_listed_in_pages_and_described(run: Run) -> None:
    created = [run.ok(f"create-key-{suffix}") for suffix in "abc"]
    assert all(answer["domain_id"] == PROJECT and answer["status"] == 200 for answer in created)
    key_ids = [answer["key_id"] for answer in created]
    assert run.ok("list-keys-paged") == {
        "listed": key_ids,
        "pages": [
            {"keys": 2, "details": 2, "truncated": "true", "total": 3},
            {"keys": 1, "details": 1, "truncated": "false", "total": 3},
        ],
    }
    described = run.ok("describe-key")  # by alias
    creation = int(described.pop("creation_date"))
    assert run.started_ms - 5000 <= creation <= run.ended_ms + 5000  # epoch milliseconds
    assert described == {
        "key_id": key_ids[0],
        "key_alias": f"{PREFIX}-a",
        "key_state": "2",
        "key_spec": "AES_256",
        "key_usage": "ENCRYPT_DECRYPT",
        "origin": "kms",
        "key_description": f"made by the {run.sdk.label} SDK",
        "key_rotation_enabled": "false",
    }


def test_data_keys_round_trip(run: Run) -> None:
    key_id = run.ok("create-key-a")["key_id"]
    assert run.ok("create-datakey") == {"key_id": key_id, "plain_bytes": 32, "cipher_text_set": True}
    assert run.ok("create-datakey-without-plaintext") == {"key_id": key_id, "cipher_text_set": True}
    assert run.ok("decrypt-datakey") == {"matches": True, "datakey_length": "32"}
    assert run.ok("encrypt-decrypt-datakey") == {
        "encrypt_datakey_length": "32",
        "matches": True,
        "digest_matches": True,  # datakey_dgst: hex SHA-256 of the data key
        "wrong_aad_code": "KMS.2201",
    }
    assert run.ok("gen-random") == {"hex_chars": 64, "is_hex": True}  # 256 bits


def test_small_data_round_trips(run: Run) -> None:
    key_id = run.ok("create-key-a")["key_id"]
    answer = run.ok("encrypt-decrypt-data")
    text = f"hello from {run.sdk.label}"
    assert answer["key_id"] == key_id and answer["plain_text"] == text and answer["cipher_is_base64"] is True


def test_states_deletion_and_the_typed_error_of_a_disabled_key(run: Run) -> None:
    key_id = run.ok("create-key-a")["key_id"]
    assert run.ok("disable-key") == {"key_state": "3"}
    error = run.refused("datakey-on-disabled-key", 400, "KMS.0209")
    assert error["message"] == f"key {key_id} is disabled"
    assert run.ok("enable-key") == {"key_state": "2"}

    scheduled = run.ok("schedule-key-deletion")
    deletion = int(scheduled.pop("scheduled_deletion_date"))
    assert scheduled == {"key_state": "4", "described_state": "4"}
    assert run.started_ms + 7 * DAY_MS - 5000 <= deletion <= run.ended_ms + 7 * DAY_MS + 5000
    assert run.ok("cancel-key-deletion") == {"key_state": "3"}  # back, disabled


def test_rotation_settings(run: Run) -> None:
    assert run.ok("enable-key-rotation") == {"enabled": True, "interval": 365, "rotations": 0}
    assert run.ok("update-key-rotation-interval") == {"enabled": True, "interval": 90, "rotations": 0}
    assert run.ok("disable-key-rotation") == {"enabled": False, "interval": 90, "rotations": 0}


def test_tags_aliases_and_account_calls(run: Run) -> None:
    # "a/b:c": the Go and Java SDKs send a path parameter's "/" and ":" as they are
    assert run.ok("create-kms-tag") == {"tags": {"team": "blue", "a/b:c": "slash"}}
    assert run.ok("delete-tag") == {"tags": {}}
    key_ids = [run.ok(f"create-key-{suffix}")["key_id"] for suffix in "ab"]
    assert run.ok("create-alias") == {"aliases": [f"{PREFIX}-a", f"{PREFIX}/second:x"]}
    assert run.ok("associate-alias") == {"key_id": key_ids[1], "aliases": [f"{PREFIX}-b", f"{PREFIX}/second:x"]}
    assert run.ok("delete-alias") == {"aliases": [f"{PREFIX}-b"]}
    grants = run.ok("grants")
    assert grants == {
        "grants": [
            {
                "grant_id_matches": True,
                "grantee": "grantee1",
                "type": "user",
                # the names the grant was made with (decrypt-data, also kms:Decrypt, is not granted)
                "operations": ["create-datakey", "decrypt-datakey"],
                "name": f"{run.sdk.label.lower().removesuffix('.js')}-grant",
                "retiring": "grantee2",
            }
        ],
        "total": 1,
        "truncated": "false",
        "total_after_revoke": 0,
    }
    assert run.ok("user-instances") == {"instance_num": 3}
    assert run.ok("user-quotas") == {"quotas": {"CMK": {"used": 3, "quota": 1000}}}


def test_signatures_and_macs(run: Run) -> None:
    # an EC_P256 key signs a SHA-256 digest (message_type DIGEST); the SDK's language verifies it with the public key
    assert run.ok("sign-verify") == {"signature_valid": "true", "tampered_valid": "false", "local_valid": True}
    assert run.ok("mac") == {"mac_valid": True, "tampered_valid": False, "mac_bytes": 32}  # HMAC_256, HMAC_SHA_256


def test_key_material_is_imported(run: Run) -> None:
    # a key of origin external waits for its material ("5"), wrapped with RSAES_OAEP_SHA_256 by the SDK's language
    imported = dict(run.ok("import"))
    assert 86_400 - 120 <= imported.pop("token_expires_in_seconds") <= 86_400  # the token's 24 h, in epoch seconds
    assert imported == {
        "pending_state": "5",
        "origin": "external",
        "public_key_bits": 2048,
        "state": "2",
        "expiration_matches": True,  # KeyDetails expiration_time: the material's, in milliseconds
        "datakey": True,
    }


def test_refusals_reach_the_sdk_as_its_typed_errors(run: Run) -> None:
    unknown = run.refused("unknown-key", 404, "KMS.0207")
    assert unknown["message"] == "key 0d0466b0-e727-4d9c-b35d-f84bb474a37f does not exist"
    for step in ("wrong-secret-key", "unknown-access-key"):
        assert "signature does not match" in run.refused(step, 401, "KMS.0302")["message"]
    # the request id the SDK reports is the one the audit log holds for that call

    def audited() -> list[dict[str, Any]]:
        records = [json.loads(line) for line in run.server.audit_log.read_text().splitlines()]
        return [record for record in records if record["request_id"] == unknown["request_id"]]

    found = wait_for(audited, 10, "the refused call's audit record")
    assert [(record["operation"], record["result"], record["status"]) for record in found] == [
        ("describe-key", "KMS.0207", 404)
    ]


def test_the_sdk_keeps_its_connections_alive(run: Run) -> None:
    """About 80 requests from three clients (the scenario's, the wrong secret's, the unknown access key's): each
    client's pool keeps its connection, the server closes none (2 to 4 connections were seen per SDK)."""
    if run.closed_connections is None:
        pytest.skip("`ss` is not installed")
    assert 1 <= run.closed_connections <= 8


def test_data_key_pairs_re_encrypt_project_tags_and_a_refusal_by_name(run: Run) -> None:
    # an RSA_2048 data key pair: the private key parsed in the SDK's language matches the public key answered,
    # and its ciphertext opens with decrypt-data
    assert run.ok("rsa-datakey-pair") == {"key_spec": "RSA_2048", "bits": 2048, "public_matches": True,
                                          "cipher_opens_to_private": True}  # fmt: skip
    assert run.ok("list-kms-tags") == {"tags": {"env": ["prod"]}}
    if run.sdk.label == "Java":  # its KmsClient (3.1.143) has no reEncrypt nor createPin
        # update_key_alias renames the key (it was this step's refusal by name until session 9)
        renamed = f"{PREFIX}-renamed"
        key_id = run.ok("create-key-b")["key_id"]
        assert run.ok("update-key-alias") == {"key_id": key_id, "key_alias": renamed, "described_as": renamed,
                                              "described_key_id": key_id}  # fmt: skip
        run.refused("old-alias-after-rename", 404, "KMS.0207")  # the old key_alias names no key any more
        refused = run.refused("list-key-stores-not-offered", 400, "KMS.0201")
    else:
        # a data key's hex ciphertext moves from key b to key a, source_key_id left out
        assert run.ok("re-encrypt") == {"key_matches": True, "source_matches": True, "opens_to_data_key": True}
        refused = run.refused("create-pin-not-offered", 400, "KMS.0201")
    assert "is not offered by kubekms" in refused["message"]
