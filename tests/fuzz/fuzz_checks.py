"""What every answer must satisfy, and the state a client sees (proof that a refusal changed nothing)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Collection
from dataclasses import replace
from typing import Any

import yaml
from fuzz_http import Answer, Connection
from fuzz_requests import V1_OPERATIONS, Case, Target, encode, json_bytes

from kubekms.devenv.kmsserver import KMSServer, Principal
from kubekms.providers import BackendConfig, open_backend

PROJECT = "fuzz"
ALIAS = "fuzz-fixture"
# the AWS wire's account is the principal's project when it has exactly one: both wires then see one keystore
FUZZER = Principal("fuzzer", projects=(PROJECT,))
V1_CODE = re.compile(r"KMS\.[0-9]{4}")
_BY_NAME = {op.name: op for op in V1_OPERATIONS}


def violations(case: Case, answer: Answer) -> list[str]:
    """The properties this answer breaks: never 5xx; valid succeeds; hostile refused with the wire's error code."""
    found = []
    if answer.status >= 500:
        found.append(f"{answer.status} answer")
    if case.garbage:
        return found
    if case.defect is None:
        if answer.status != 200:
            found.append(f"valid request refused: {answer.status} {answer.body[:200]!r}")
        return found
    if answer.status < 400:
        found.append(f"wrong success: {answer.status} for defect {case.defect}")
        return found
    body = answer.json()
    if case.wire == "v1":
        error = body.get("error") if isinstance(body, dict) else None
        if not isinstance(error, dict) or not V1_CODE.fullmatch(str(error.get("error_code"))):
            found.append(f"v1 refusal without a KMS.xxxx error_code: {answer.body[:200]!r}")
    elif not isinstance(body, dict) or not isinstance(body.get("__type"), str) or "message" not in body:
        found.append(f"AWS refusal without __type and message: {answer.body[:200]!r}")
    return found


def call(connection: Connection, target: Target, operation: str, body: dict[str, Any] | None = None) -> Any:
    """One valid v1.0 request as the fixture's principal; its JSON answer (asserting success)."""
    op = _BY_NAME[operation]
    answer = connection.send(encode(op, target, json_bytes(op.body(target) if body is None else body)))
    assert answer.status == 200, (operation, answer.status, answer.body[:300])
    return answer.json()


def snapshot(connection: Connection, target: Target, key_ids: Collection[str] | None = None) -> dict[str, Any]:
    """Every key of the project with its KeyDetails; tags and aliases of ``key_ids`` (default: every key)."""
    state: dict[str, Any] = {}
    for details in call(connection, target, "list-keys", {"limit": "1000"})["key_details"]:
        key_id = details["key_id"]
        state[key_id] = {"details": details}
        if key_ids is None or key_id in key_ids:
            on_key = replace(target, key_id=key_id)
            state[key_id]["tags"] = call(connection, on_key, "list-key-tags")["tags"]
            state[key_id]["aliases"] = call(connection, on_key, "list-aliases")
    return state


def server_log(server: KMSServer) -> str:
    return server.log.read_text(errors="replace")


def prepare_target(server: KMSServer) -> Target:
    """The fixture key (alias, tag fuzz=yes) and a data key under it, made through the real client."""

    async def prepare() -> tuple[str, bytes]:
        config = BackendConfig(
            provider="kubekms",
            endpoint=server.endpoint,
            project_id=PROJECT,
            credentials_file=server.credentials_file(FUZZER.name),
        )
        backend = await open_backend(config)
        try:
            key = await backend.create_key(ALIAS, description="fuzz fixture", tags={"fuzz": "yes"})
            data_key = await backend.create_data_key(key.key_id, length=32)
            return key.key_id, data_key.ciphertext
        finally:
            await backend.close()

    key_id, ciphertext = asyncio.run(prepare())
    credentials = yaml.safe_load(server.credentials_file(FUZZER.name).read_text())
    return Target(
        host="127.0.0.1",
        port=server.port,
        project_id=PROJECT,
        access_key=credentials["access_key"],
        secret_key=credentials["secret_key"],
        key_id=key_id,
        alias=ALIAS,
        ciphertext=ciphertext,
    )
