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
from kubekms.server.logs import RefusalLog
from kubekms.server.metrics import ServerMetrics
from kubekms.server.operations import KeyScope
from kubekms.server.principals import PrincipalDirectory, PrincipalGrant
from kubekms.server.sigv4 import SigV4Verifier
from kubekms.wire import inputs
from kubekms.wire.aws_errors import MalformedBody, UnknownOperation, aws_error_type

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
        refusals: RefusalLog,
        default_project: str = "default",
        max_body_bytes: int = 64 * 1024,
    ) -> None:
        self._principals = principals
        self._verifier = SigV4Verifier(principals.secret_for)
        self._backend_for = backend_for
        self._audit = audit
        self._metrics = metrics
        self._refusals = refusals
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
            inputs.request_target(request.raw_path, error=InvalidArgument)
            operation_name, operation = self._operation(request)
            body = await inputs.read_body(request, self._max_body_bytes)
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
            if response.status < 500:
                self._refusals.refused(
                    client=request.remote or "-",
                    wire="aws",
                    reason=aws_error_type(error)[0],
                    status=response.status,
                    operation=operation_name,
                    request_id=request_id,
                )
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
        target = inputs.header(request.headers, "X-Amz-Target", error=UnknownOperation) or ""
        name = target.removeprefix(TARGET_PREFIX)
        operation = OPERATIONS.get(name) if target.startswith(TARGET_PREFIX) else None
        if operation is None:
            raise UnknownOperation(
                f"unknown operation {target[:64]!r}; this server offers {', '.join(sorted(OPERATIONS))}"
            )
        return name, operation

    def _project_of(self, principal: PrincipalGrant) -> str:
        if principal.projects is not None and len(principal.projects) == 1:
            return next(iter(principal.projects))
        return self._default_project


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        return inputs.json_object(body)
    except inputs.MalformedJson as error:
        raise MalformedBody(error.message) from None


def _error_response(error: KMSError, request_id: str) -> web.Response:
    error_type, status = aws_error_type(error)
    response = web.Response(
        status=status,
        body=json.dumps({"__type": error_type, "message": error.message}).encode(),
        headers={"Content-Type": CONTENT_TYPE, "x-amzn-RequestId": request_id},
    )
    if isinstance(error, inputs.BodyTooLarge):
        response.force_close()  # the rest of the body is not read: close instead of draining it
    return response
