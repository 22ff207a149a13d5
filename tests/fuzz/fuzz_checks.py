"""What every answer must satisfy, and the state a client sees (proof that a refusal changed nothing)."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from fuzz_http import Answer, Connection
from fuzz_requests import V1_OPERATIONS, Case, Target, encode, json_bytes

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


def snapshot(connection: Connection, target: Target) -> dict[str, Any]:
    """Every key of the project with its KeyDetails, tags and aliases."""
    state: dict[str, Any] = {}
    for details in call(connection, target, "list-keys", {"limit": "1000"})["key_details"]:
        on_key = replace(target, key_id=details["key_id"])
        tags = call(connection, on_key, "list-key-tags")["tags"]
        aliases = call(connection, on_key, "list-aliases")
        state[details["key_id"]] = {"details": details, "tags": tags, "aliases": aliases}
    return state
