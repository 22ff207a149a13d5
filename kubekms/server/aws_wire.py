"""The AWS KMS JSON 1.1 wire of the kubekms server: ``POST /`` with ``X-Amz-Target: TrentService.<Op>``.

Same keystores, principals, audit log and metrics as the v1.0 wire; only the envelope
differs: SigV4 instead of SDK-HMAC-SHA256, ``{"__type", "message"}`` errors, base64 blobs,
epoch-second times. The AWS account of a request is its principal's project when the
principal is limited to exactly one, otherwise ``default_project``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from kubekms.backend import Backend
from kubekms.errors import InvalidArgument, KMSError, Unauthenticated
from kubekms.server.audit import AuditLog
from kubekms.server.aws_call import AwsCall
from kubekms.server.aws_operations import OPERATIONS, AwsOperation
from kubekms.server.metrics import ServerMetrics
from kubekms.server.operations import KeyScope
from kubekms.server.principals import PrincipalDirectory, PrincipalGrant
from kubekms.wire.aws_errors import MalformedBody, UnknownOperation, aws_error_type
from kubekms.wire.sigv4 import SigV4Verifier

log = logging.getLogger("kubekms.server.aws")

CONTENT_TYPE = "application/x-amz-json-1.1"
TARGET_PREFIX = "TrentService."
UNAUTHENTICATED = "-"


class AwsWire:
    def __init__(
        self,
        *,
        principals: PrincipalDirectory,
        backend_for: Callable[[str], Awaitable[Backend]],
        audit: AuditLog,
        metrics: ServerMetrics,
        default_project: str = "default",
        max_body_bytes: int = 64 * 1024,
    ) -> None:
        self._principals = principals
        self._verifier = SigV4Verifier(principals.secret_for)
        self._backend_for = backend_for
        self._audit = audit
        self._metrics = metrics
        self._default_project = default_project
        self._max_body_bytes = max_body_bytes

    def register(self, app: web.Application) -> None:
        """Add ``POST /``; call before any catch-all route."""
        app.router.add_post("/", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        request_id = str(uuid.uuid4())
        operation_name, principal_name, project_id, key_ref = "unknown", UNAUTHENTICATED, "", ""
        try:
            operation_name, operation = self._operation(request)
            body = await self._read_body(request)
            verified = self._verifier.verify(request.method, request.raw_path, request.headers, body)
            principal = self._principals.get(verified.access_key)
            if principal is None:
                raise Unauthenticated("The security token included in the request is invalid.")
            principal_name = principal.name
            project_id = self._project_of(principal)
            principal.check_operation(operation.permission, project_id)
            call = AwsCall(
                backend=await self._backend_for(project_id),
                account=project_id,
                region=verified.region,
                body=_json_object(body),
            )
            scope = operation.scope_of(call)
            if scope is KeyScope.KEY:
                key_ref = operation.key_ref(call)
                await principal.authorize_key(operation_name, call.backend, key_ref)
            elif scope is KeyScope.ACCOUNT and not principal.all_keys:
                raise principal.deny_account_wide(operation_name)
            answer = await operation.handler(call)
            key_ref = key_ref or str(answer.get("KeyMetadata", {}).get("KeyId", ""))
            response = web.Response(
                body=json.dumps(answer, separators=(",", ":")).encode(),
                headers={"Content-Type": CONTENT_TYPE, "x-amzn-RequestId": request_id},
            )
            result = "OK"
        except KMSError as error:
            response, result = _error_response(error, request_id), error.code
        except Exception:
            log.exception("unexpected error", extra={"fields": {"operation": operation_name, "request_id": request_id}})
            response, result = _error_response(KMSError("internal error"), request_id), "KMS.0101"
        self._audit.record(
            principal=principal_name,
            project_id=project_id,
            operation=f"aws:{operation_name}",
            key_id=key_ref,
            result=result,
            request_id=request_id,
            status=response.status,
        )
        self._metrics.observe(f"aws:{operation_name}", result, time.perf_counter() - started)
        return response

    @staticmethod
    def _operation(request: web.Request) -> tuple[str, AwsOperation]:
        target = request.headers.get("X-Amz-Target", "")
        name = target.removeprefix(TARGET_PREFIX)
        operation = OPERATIONS.get(name) if target.startswith(TARGET_PREFIX) else None
        if operation is None:
            raise UnknownOperation(f"unknown operation {target!r}; this server offers {', '.join(sorted(OPERATIONS))}")
        return name, operation

    async def _read_body(self, request: web.Request) -> bytes:
        if request.content_length is not None and request.content_length > self._max_body_bytes:
            raise InvalidArgument(f"request body larger than {self._max_body_bytes} bytes")
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise InvalidArgument(f"request body larger than {self._max_body_bytes} bytes") from None

    def _project_of(self, principal: PrincipalGrant) -> str:
        if principal.projects is not None and len(principal.projects) == 1:
            return next(iter(principal.projects))
        return self._default_project


def _json_object(body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise MalformedBody("the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise MalformedBody("the request body must be a JSON object")
    return data


def _error_response(error: KMSError, request_id: str) -> web.Response:
    error_type, status = aws_error_type(error)
    return web.Response(
        status=status,
        body=json.dumps({"__type": error_type, "message": error.message}).encode(),
        headers={"Content-Type": CONTENT_TYPE, "x-amzn-RequestId": request_id},
    )
