"""The Huawei/OTC KMS v1.0 REST wire of the kubekms server: ``/v1.0/{project_id}/kms/...``.

The wire's own part of a request (see :mod:`kubekms.server.pipeline` for the rest): the
project in the path, the route (:mod:`kubekms.server.operations`), SDK-HMAC-SHA256 signatures,
``{"error": {"error_code", "error_msg"}}`` answers with the ``KMS.xxxx`` codes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubekms.backend import Backend
from kubekms.errors import InvalidArgument, KMSError
from kubekms.server.http_messages import COMPACT_JSON, HttpRequest, HttpResponse, unquote_segment
from kubekms.server.operations import Route, resolve
from kubekms.server.pipeline import REQUEST_IDS, Exchange
from kubekms.server.principals import PrincipalDirectory, PrincipalGrant
from kubekms.server.v1_call import Call, KeyScope
from kubekms.server.v1_data_keys import check_policy_context
from kubekms.server.v1_keys import CREATION_TAGS_FIELD, TAGGING_PERMISSION
from kubekms.wire import inputs
from kubekms.wire.signing import SignatureVerifier
from kubekms.wire.v1 import errors as v1_errors
from kubekms.wire.v1 import fields as v1_fields

PROJECT_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")  # matched whole: also a directory name (no dots, slashes)
MAX_PATH_CHARS = 1024
JSON_CONTENT_TYPE = "application/json"
BAD_PATH_CODE = "KMS.0201"
NO_PROJECT = "-"  # in the audit log, never an unchecked path segment
_V1_PATH = re.compile(r"/v1\.0/([^{}/]+)/kms/([\s\S]*)")  # [\s\S]: "." stops at a newline


def v1_path(request: HttpRequest) -> tuple[str, str] | None:
    """The project id (decoded) and the path after ``kms/`` of a v1.0 request, unchecked, or None.

    The path stays in routing form (``%2F`` and ``%25`` still encoded) so that an encoded slash in a tag key
    does not split its segment: :func:`~kubekms.server.operations.resolve` decodes each segment it routes on.
    """
    match = _V1_PATH.fullmatch(request.path)
    return None if match is None else (unquote_segment(match[1]), match[2])


def bad_path(message: str) -> InvalidArgument:
    return InvalidArgument(message, code=BAD_PATH_CODE)


@dataclass(frozen=True)
class V1Call:
    route: Route
    fields: v1_fields.RequestFields
    query: Mapping[str, str]
    project_id: str
    caller: PrincipalGrant | None

    def scope(self) -> KeyScope:
        return self.route.operation.scope_of(self.query)

    def key_ref(self) -> str:
        return self.route.operation.key_ref(self.route.path_key_id, self.query, self.fields)

    async def run(self, backend: Backend) -> Any:
        call = Call(backend=backend, project_id=self.project_id, fields=self.fields, query=self.query,
                    path_key_id=self.route.path_key_id, path_tag_key=self.route.path_tag_key,
                    caller=self.caller, names_key=self.route.operation.key_ref)  # fmt: skip
        return await self.route.operation.handler(call)


class V1Wire:
    name = "v1"
    audit_prefix = ""

    def __init__(self, principals: PrincipalDirectory, *, max_body_bytes: int) -> None:
        self._verifier = SignatureVerifier(principals.secret_for)
        self._principals = principals
        self._max_body_bytes = max_body_bytes

    def exchange(self, request: HttpRequest) -> Exchange:
        parts = _parts(request)  # kept as the exchange's target until accept routes the request
        project_id = parts[0] if PROJECT_ID_PATTERN.fullmatch(parts[0]) else NO_PROJECT
        return Exchange(request_id=REQUEST_IDS.hex(), client=request.remote or "-", project_id=project_id, target=parts)

    async def accept(self, request: HttpRequest, exchange: Exchange) -> None:
        inputs.request_target(request.raw_path, error=bad_path)
        parts = exchange.target
        assert isinstance(parts, tuple), "exchange() kept the path's parts"
        raw_project, raw_tail = parts
        project_id = inputs.identifier(raw_project, "project id in the request path", PROJECT_ID_PATTERN,
                                       error=bad_path)  # fmt: skip
        exchange.project_id = project_id
        tail = inputs.text(raw_tail, "request path", max_chars=MAX_PATH_CHARS, error=bad_path)
        route = resolve(request.method, tail)
        exchange.operation = exchange.permission = route.operation.name
        exchange.target = route
        exchange.body = inputs.received_body(request, self._max_body_bytes)
        exchange.access_key = self._verifier.verify(request.method, request.raw_path.split("?", 1)[0],
                                                    request.query_string, request.headers, exchange.body)  # fmt: skip

    def project_of(self, principal: PrincipalGrant, exchange: Exchange) -> str:
        return exchange.project_id

    def bind(self, exchange: Exchange, request: HttpRequest) -> V1Call:
        route = exchange.target
        assert isinstance(route, Route), "accept routed the request"
        fields = v1_fields.RequestFields(v1_fields.parse_json_object(exchange.body))
        check_policy_context(route.operation.name, fields, exchange.body)  # before any authorisation reads it
        grant = self._principals.get(exchange.access_key)
        # the pipeline refuses an unknown access key itself
        if route.operation.name == "create-key" and fields.has(CREATION_TAGS_FIELD) and grant is not None:
            grant.check_operation(TAGGING_PERMISSION, exchange.project_id)
        return V1Call(route=route, fields=fields, query=request.query, project_id=exchange.project_id, caller=grant)

    def answer_key(self, answer: Any) -> str:
        return str((answer.get("key_info") or {}).get("key_id", "")) if isinstance(answer, dict) else ""

    def render(self, answer: Any, exchange: Exchange) -> HttpResponse:
        return HttpResponse(200, COMPACT_JSON(answer).encode(),
                            {"Content-Type": JSON_CONTENT_TYPE, "X-Request-Id": exchange.request_id})  # fmt: skip

    def render_error(self, error: KMSError, exchange: Exchange) -> HttpResponse:
        return error_response(error, exchange.request_id)

    def status_of(self, response: HttpResponse) -> int:
        return response.status

    def refusal_reason(self, error: KMSError) -> str:
        return v1_errors.error_code(error)


def error_response(error: KMSError, request_id: str) -> HttpResponse:
    return HttpResponse(
        v1_errors.error_status(error),
        json.dumps(v1_errors.error_body(error)).encode(),
        {"Content-Type": JSON_CONTENT_TYPE, "X-Request-Id": request_id},
        close=isinstance(error, inputs.BodyTooLarge),  # the rest of the body is not read: close instead of draining it
    )


def _parts(request: HttpRequest) -> tuple[str, str]:
    parts = v1_path(request)
    assert parts is not None, "the application routes only v1.0 paths here"
    return parts
