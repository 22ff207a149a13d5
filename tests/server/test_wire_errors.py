"""Raw HTTP against the server: signature failures, malformed and oversized bodies, unknown paths and methods."""

from __future__ import annotations

import asyncio
import json
import re
import time
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from kubekms.devenv.kmsserver import KMSServer, kms_server
from kubekms.providers import Credentials
from kubekms.wire.signing import sign_headers


async def send(
    server: KMSServer,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    credentials: Credentials | None = None,
    now: datetime | None = None,
    signed_body: bytes | None = None,
    extra_headers: dict[str, str] | None = None,
) -> tuple[int, dict, aiohttp.typedefs.LooseHeaders]:
    """Sign (unless credentials are None) and send; ``signed_body`` lets the sent body differ from the signed one."""
    url = server.endpoint + path
    headers = {"Content-Type": "application/json", **(extra_headers or {})}
    if credentials is not None:
        headers = sign_headers(method, url, headers, body if signed_body is None else signed_body, credentials, now)
    async with aiohttp.ClientSession() as session, session.request(method, url, data=body, headers=headers) as answer:
        text = await answer.text()
        return answer.status, (json.loads(text) if text.startswith(("{", "[")) else {"raw": text}), answer.headers


def error_code(payload: dict) -> str:
    return payload["error"]["error_code"]


@pytest.fixture
def admin(server: KMSServer) -> Credentials:
    return Credentials.from_file(server.credentials_file("admin"))


async def test_a_signed_request_succeeds_and_carries_a_request_id(server: KMSServer, admin: Credentials) -> None:
    status, payload, headers = await send(server, "GET", "/v1.0/proj1/kms/user-instances", credentials=admin)
    assert status == 200 and isinstance(payload["instance_num"], int)
    assert len(headers["X-Request-Id"]) == 32


@pytest.mark.parametrize(
    ("kwargs", "status", "code"),
    [
        ({}, 401, "KMS.0301"),  # not signed at all
        ({"credentials": Credentials("AKUNKNOWN", "whatever")}, 401, "KMS.0302"),
        ({"credentials": "wrong-secret"}, 401, "KMS.0302"),
        ({"clock_offset": timedelta(minutes=-16)}, 401, "KMS.0303"),
        ({"clock_offset": timedelta(minutes=16)}, 401, "KMS.0303"),
        ({"signed_body": b'{"random_data_length": "64"}'}, 401, "KMS.0302"),  # body swapped after signing
    ],
)
async def test_signature_failures(server: KMSServer, admin: Credentials, kwargs: dict, status: int, code: str) -> None:
    if kwargs.get("credentials") == "wrong-secret":
        kwargs = {"credentials": Credentials(admin.access_key, admin.secret_key + "x")}
    if "clock_offset" in kwargs:  # the date is taken now, not at collection (a long run would shift it)
        kwargs = {"now": datetime.now(UTC) + kwargs["clock_offset"]}
    kwargs.setdefault("credentials", admin) if kwargs else None
    got_status, payload, headers = await send(
        server, "POST", "/v1.0/proj1/kms/gen-random", b'{"random_data_length": "128"}', **kwargs
    )
    assert (got_status, error_code(payload)) == (status, code)
    assert headers["X-Request-Id"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"{not json", "KMS.0202"),
        (b'["a list"]', "KMS.0202"),
        (b"{}", "KMS.0204"),  # key_id missing
        (b'{"key_id": 42}', "KMS.0205"),  # wrong type
        (b'{"key_id": ["x"]}', "KMS.0205"),
        (b'{"key_id": "x", "datakey_length": {"a": 1}}', "KMS.1901"),
        (b'{"key_id": "x", "additional_authenticated_data": 7}', "KMS.0208"),
    ],
)
async def test_malformed_bodies_get_400_and_the_wire_code(
    server: KMSServer, admin: Credentials, body: bytes, code: str
) -> None:
    status, payload, _ = await send(server, "POST", "/v1.0/proj1/kms/create-datakey", body, credentials=admin)
    assert (status, error_code(payload)) == (400, code)


async def test_an_oversized_body_is_refused_before_anything_else(server: KMSServer, admin: Credentials) -> None:
    body = json.dumps({"key_alias": "big", "key_description": "x" * 70_000}).encode()
    status, payload, _ = await send(server, "POST", "/v1.0/proj1/kms/create-key", body, credentials=admin)
    assert (status, error_code(payload)) == (413, "KMS.0203")
    # and nothing was written
    status, payload, _ = await send(
        server, "POST", "/v1.0/proj1/kms/describe-key", b'{"key_id": "big"}', credentials=admin
    )
    assert (status, error_code(payload)) == (404, "KMS.0207")


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("POST", "/v1.0/proj1/kms/no-such-operation", 400, "KMS.0201"),
        ("POST", "/v2.0/proj1/kms/create-key", 400, "KMS.0201"),
        ("GET", "/nothing-here", 400, "KMS.0201"),
        ("POST", "/v1.0/../kms/create-key", 400, "KMS.0201"),
        ("POST", "/v1.0/pro.j/kms/create-key", 400, "KMS.0201"),  # project ids name directories: no dots
        ("GET", "/v1.0/proj1/kms/create-key", 405, "KMS.0215"),
        ("PUT", "/v1.0/proj1/kms/describe-key", 405, "KMS.0215"),
        ("POST", "/v1.0/proj1/kms/user-quotas", 405, "KMS.0215"),
    ],
)
async def test_unknown_paths_and_methods(
    server: KMSServer, admin: Credentials, method: str, path: str, status: int, code: str
) -> None:
    got_status, payload, headers = await send(server, method, path, b"{}", credentials=admin)
    assert (got_status, error_code(payload)) == (status, code)
    assert headers["X-Request-Id"]


async def test_unknown_request_fields_are_ignored(server: KMSServer, admin: Credentials) -> None:
    body = b'{"random_data_length": 128, "sequence": "919c82d4-8046-4722-9094-35c3c6524cff", "whatever": [1]}'
    status, payload, _ = await send(server, "POST", "/v1.0/proj1/kms/gen-random", body, credentials=admin)
    assert status == 200 and len(bytes.fromhex(payload["random_data"])) == 16  # an int accepted as well as a string


async def test_otcextensions_encryption_context_binds_the_ciphertext(server: KMSServer, admin: Credentials) -> None:
    status, created, _ = await send(
        server, "POST", "/v1.0/proj1/kms/create-key", b'{"key_alias": "ctx-key"}', credentials=admin
    )
    assert status == 200
    key_id = created["key_info"]["key_id"]
    body = {"key_id": key_id, "datakey_length": 256, "encryption_context": {"a": "1", "b": "2"}}
    status, data_key, _ = await send(
        server, "POST", "/v1.0/proj1/kms/create-datakey", json.dumps(body).encode(), credentials=admin
    )
    assert status == 200
    decrypt = {"key_id": key_id, "cipher_text": data_key["cipher_text"], "encryption_context": {"b": "2", "a": "1"}}
    status, plain, _ = await send(
        server, "POST", "/v1.0/proj1/kms/decrypt-datakey", json.dumps(decrypt).encode(), credentials=admin
    )
    assert status == 200 and plain["data_key"] == data_key["plain_text"]
    decrypt["encryption_context"] = {"a": "1"}
    status, payload, _ = await send(
        server, "POST", "/v1.0/proj1/kms/decrypt-datakey", json.dumps(decrypt).encode(), credentials=admin
    )
    assert (status, error_code(payload)) == (400, "KMS.2201")


async def test_aliases_and_tags_on_their_wire_paths(server: KMSServer, admin: Credentials) -> None:
    _, created, _ = await send(
        server, "POST", "/v1.0/proj1/kms/create-key", b'{"key_alias": "tagged"}', credentials=admin
    )
    key_id = created["key_info"]["key_id"]
    post = lambda path, body: send(server, "POST", path, json.dumps(body).encode(), credentials=admin)  # noqa: E731
    status, alias, _ = await post("/v1.0/proj1/kms/aliases", {"key_id": key_id, "alias": "tagged-second"})
    assert status == 200 and alias["alias"] == "tagged-second"
    status, pages, _ = await send(server, "GET", f"/v1.0/proj1/kms/aliases?key_id={key_id}", credentials=admin)
    assert status == 200 and {a["alias"] for a in pages[0]["aliases"]} == {"tagged", "tagged-second"}
    delete = json.dumps({"key_id": key_id, "aliases": ["tagged-second"]}).encode()
    assert (await send(server, "DELETE", "/v1.0/proj1/kms/aliases", delete, credentials=admin))[0] == 200

    assert (await post(f"/v1.0/proj1/kms/{key_id}/tags", {"tag": {"key": "owner", "value": "team-a"}}))[0] == 200
    tags = [{"key": "env", "value": "prod"}, {"key": "uid", "value": "123"}]
    assert (await post(f"/v1.0/proj1/kms/{key_id}/tags/action", {"action": "create", "tags": tags}))[0] == 200
    status, listed, _ = await send(server, "GET", f"/v1.0/proj1/kms/{key_id}/tags", credentials=admin)
    assert {t["key"]: t["value"] for t in listed["tags"]} == {"owner": "team-a", "env": "prod", "uid": "123"}
    assert listed["existTagsNum"] == 3

    status, found, _ = await post(
        "/v1.0/proj1/kms/resource_instances/action", {"action": "filter", "tags": [{"key": "uid", "values": ["123"]}]}
    )
    assert status == 200 and [r["resource_id"] for r in found["resources"]] == [key_id] and found["total_count"] == 1

    assert (await send(server, "DELETE", f"/v1.0/proj1/kms/{key_id}/tags/owner", credentials=admin))[0] == 200
    status, payload, _ = await post(f"/v1.0/proj1/kms/{key_id}/tags/action", {"action": "explode", "tags": tags})
    assert (status, error_code(payload)) == (400, "KMS.0404")
    _, listed, _ = await send(server, "GET", f"/v1.0/proj1/kms/{key_id}/tags", credentials=admin)
    assert {t["key"] for t in listed["tags"]} == {"env", "uid"}


async def test_health_and_metrics_need_no_signature(server: KMSServer, admin: Credentials) -> None:
    await send(server, "POST", "/v1.0/proj1/kms/describe-key", b'{"key_id": "missing"}', credentials=admin)
    status, payload, headers = await send(server, "GET", "/healthz")
    assert status == 200 and payload == {"raw": "ok"} and headers["X-Request-Id"]
    status, payload, headers = await send(server, "GET", "/metrics")
    assert status == 200 and headers["X-Request-Id"]
    assert 'kubekms_server_requests_total{code="KMS.0207",operation="describe-key"}' in payload["raw"]
    assert 'kubekms_server_request_duration_seconds_bucket{le="0.005",operation="describe-key"}' in payload["raw"]


async def test_the_maintenance_loop_runs_on_its_interval(tmp_path) -> None:
    with kms_server(tmp_path / "kms", maintenance_interval=0.1) as fast:
        deadline = time.monotonic() + 30
        passes = 0.0
        while passes < 3:
            assert time.monotonic() < deadline, "no maintenance passes"
            _, payload, _ = await send(fast, "GET", "/metrics")
            match = re.search(r"^kubekms_server_maintenance_passes_total (\S+)$", payload["raw"], re.MULTILINE)
            passes = float(match.group(1)) if match else 0.0
            await asyncio.sleep(0.1)  # polling the counter, with a deadline
        assert "kubekms_server_keys_destroyed_total 0.0" in payload["raw"]


async def test_an_error_answer_names_its_code_at_the_top_level_too(server: KMSServer, admin: Credentials) -> None:
    """Huawei's Node.js SDK core reads ``error_code``/``error_msg`` at the top level (or ``error.code``/
    ``error.message``), the Go, Java and Python SDKs ``error.error_code`` too: both forms, the same values."""
    body = json.dumps({"key_id": "0d0466b0-e727-4d9c-b35d-f84bb474a37f"}).encode()
    status, payload, _ = await send(server, "POST", "/v1.0/proj1/kms/describe-key", body, credentials=admin)
    message = "key 0d0466b0-e727-4d9c-b35d-f84bb474a37f does not exist"
    assert (status, payload) == (
        404,
        {"error": {"error_code": "KMS.0207", "error_msg": message}, "error_code": "KMS.0207", "error_msg": message},
    )
