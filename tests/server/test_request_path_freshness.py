"""A change made through one worker holds at once in every worker, whatever they keep in memory.

Each worker caches key rows, key material and policies between requests and looks for other
processes' commits once per request (:mod:`kubekms.keystore.request_scope`). Here two workers
first serve a key (so both hold it in memory); then the key is disabled, enabled, and given a
policy that denies, each through whichever worker answers, and every request sent after that
answer, on a new connection, is answered by the new state, by both workers.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import yaml
from aws_policy_support import REGION, account_root, boto_kms, policy, user
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from test_workers import running_with_workers

from kubekms.devenv.kmsserver import KMSServer
from kubekms.server.workers import WORKER_HEADER

DEADLINE = 30.0  # seconds for both workers to have answered (the kernel picks the accepting worker)


@dataclass(frozen=True)
class Answer:
    status: int
    error_type: str
    worker: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with running_with_workers(tmp_path_factory.mktemp("kms-freshness")) as running:
        yield running


def call(server: KMSServer, target: str, body: dict[str, Any]) -> Answer:
    """One SigV4-signed AWS-wire call on a new connection (so any worker may take it)."""
    credentials = yaml.safe_load(server.credentials_file("admin").read_text())
    data = json.dumps(body).encode()
    signed = AWSRequest(method="POST", url=f"{server.endpoint}/", data=data,
                        headers={"Content-Type": "application/x-amz-json-1.1",
                                 "X-Amz-Target": f"TrentService.{target}"})  # fmt: skip
    SigV4Auth(BotoCredentials(credentials["access_key"], credentials["secret_key"]), "kms", REGION).add_auth(signed)
    request = urllib.request.Request(signed.url, data=data, headers=dict(signed.headers.items()), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return Answer(answer.status, "", answer.headers[WORKER_HEADER])
    except urllib.error.HTTPError as error:
        return Answer(error.code, json.loads(error.read())["__type"], error.headers[WORKER_HEADER])


def from_both_workers(server: KMSServer, target: str, body: dict[str, Any]) -> list[Answer]:
    """Calls until two different workers have answered (every answer kept, for the caller to check)."""
    answers: list[Answer] = []
    deadline = time.monotonic() + DEADLINE
    while len({answer.worker for answer in answers}) < 2:
        assert time.monotonic() < deadline, f"only one worker answered {len(answers)} calls"
        answers.append(call(server, target, body))
    return answers


def outcomes(answers: list[Answer]) -> set[tuple[int, str]]:
    return {(answer.status, answer.error_type) for answer in answers}


def test_disable_enable_and_a_denying_policy_hold_at_once_in_both_workers(server: KMSServer) -> None:
    kms = boto_kms(server)
    key_id = kms.create_key(Description="freshness")["KeyMetadata"]["KeyId"]
    generate = {"KeyId": key_id, "NumberOfBytes": 32}
    blob = kms.generate_data_key(**generate)["CiphertextBlob"]
    decrypt = {"CiphertextBlob": base64.b64encode(blob).decode()}
    # both workers now hold the key, its material and its (default) policy in memory
    assert outcomes(from_both_workers(server, "GenerateDataKey", generate)) == {(200, "")}
    assert outcomes(from_both_workers(server, "Decrypt", decrypt)) == {(200, "")}

    kms.disable_key(KeyId=key_id)
    assert outcomes(from_both_workers(server, "GenerateDataKey", generate)) == {(400, "DisabledException")}
    assert outcomes(from_both_workers(server, "Decrypt", decrypt)) == {(400, "DisabledException")}

    kms.enable_key(KeyId=key_id)
    assert outcomes(from_both_workers(server, "GenerateDataKey", generate)) == {(200, "")}

    deny = {"Effect": "Deny", "Principal": user("admin"), "Action": "kms:GenerateDataKey", "Resource": "*"}
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=policy(account_root(), deny))
    assert outcomes(from_both_workers(server, "GenerateDataKey", generate)) == {(400, "AccessDeniedException")}
    assert outcomes(from_both_workers(server, "Decrypt", decrypt)) == {(200, "")}  # the policy denies only that

    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=policy(account_root()))
    assert outcomes(from_both_workers(server, "GenerateDataKey", generate)) == {(200, "")}
