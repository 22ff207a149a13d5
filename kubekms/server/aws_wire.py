"""The AWS KMS JSON 1.1 wire of the kubekms server: ``POST /`` with ``X-Amz-Target: TrentService.<Op>``.

Same keystores, principals, audit log and metrics as the v1.0 wire (the shared part of a request
is :mod:`kubekms.server.pipeline`); only the dialect differs: SigV4 instead of SDK-HMAC-SHA256,
``{"__type", "message"}`` errors, base64 blobs, epoch-second times. The AWS account of a request
is its principal's project when the principal is limited to exactly one, otherwise
``default_project``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubekms.backend import Backend
from kubekms.errors import InvalidArgument, KMSError
from kubekms.server.aws_call import AwsRequest, check_region
from kubekms.server.aws_operations import OPERATIONS, AwsOperation
from kubekms.server.http_messages import COMPACT_JSON, HttpRequest, HttpResponse
from kubekms.server.operations import KeyScope
from kubekms.server.pipeline import REQUEST_IDS, Exchange
from kubekms.server.principals import PrincipalDirectory, PrincipalGrant
from kubekms.server.sigv4 import SigV4Verifier
from kubekms.wire import inputs
from kubekms.wire.aws_errors import MalformedBody, UnknownOperation, aws_error_type

CONTENT_TYPE = "application/x-amz-json-1.1"
TARGET_PREFIX = "TrentService."
NO_PROJECT = ""


@dataclass(slots=True)  # not frozen: a frozen dataclass's construction costs three times as much, once a request
class AwsBoundCall:
    operation: AwsOperation
    request: AwsRequest

    def scope(self) -> KeyScope:
        return self.operation.scope_of(self.request)

    def key_ref(self) -> str:
        return self.operation.key_ref(self.request)

    async def run(self, backend: Backend) -> Any:
        call = self.request.on(backend)  # keeps the key and ciphertext the pipeline's key_ref() already parsed
        if self.scope() is KeyScope.KEY:
            await check_region(call, self.key_ref())  # a key of another region is not found from this one
        return await self.operation.handler(call)


class AwsWire:
    name = "aws"
    audit_prefix = "aws:"

    def __init__(self, principals: PrincipalDirectory, *, default_project: str = "default",
                 max_body_bytes: int = 64 * 1024) -> None:  # fmt: skip
        self._verifier = SigV4Verifier(principals.secret_for)
        self._principals = principals
        self._default_project = default_project
        self._max_body_bytes = max_body_bytes

    def exchange(self, request: HttpRequest) -> Exchange:
        return Exchange(request_id=REQUEST_IDS.uuid(), client=request.remote or "-", project_id=NO_PROJECT)

    async def accept(self, request: HttpRequest, exchange: Exchange) -> None:
        inputs.request_target(request.raw_path, error=InvalidArgument)
        exchange.operation, operation = self._operation(request)
        exchange.permission, exchange.target = operation.permission, operation
        exchange.body = inputs.received_body(request, self._max_body_bytes)
        verified = self._verifier.verify(request.method, request.raw_path, request.headers, exchange.body)
        exchange.access_key, exchange.region = verified.access_key, verified.region

    def project_of(self, principal: PrincipalGrant, exchange: Exchange) -> str:
        if principal.projects is not None and len(principal.projects) == 1:
            return next(iter(principal.projects))
        return self._default_project

    def bind(self, exchange: Exchange, request: HttpRequest) -> AwsBoundCall:
        operation = exchange.target
        assert isinstance(operation, AwsOperation), "accept routed the request"
        body = _json_object(exchange.body)
        caller = self._principals.get(exchange.access_key)
        return AwsBoundCall(
            operation, AwsRequest(account=exchange.project_id, region=exchange.region, body=body, caller=caller)
        )

    def answer_key(self, answer: Any) -> str:
        return str(answer.get("KeyMetadata", {}).get("KeyId", ""))

    def render(self, answer: Any, exchange: Exchange) -> HttpResponse:
        headers = {"Content-Type": CONTENT_TYPE, "x-amzn-RequestId": exchange.request_id}
        return HttpResponse(200, COMPACT_JSON(answer).encode(), headers)

    def render_error(self, error: KMSError, exchange: Exchange) -> HttpResponse:
        error_type, status = aws_error_type(error)
        return HttpResponse(
            status,
            json.dumps({"__type": error_type, "message": error.message}).encode(),
            {"Content-Type": CONTENT_TYPE, "x-amzn-RequestId": exchange.request_id},
            close=isinstance(error, inputs.BodyTooLarge),  # the rest of the body is not read: close, not drain
        )

    def status_of(self, response: HttpResponse) -> int:
        return response.status

    def refusal_reason(self, error: KMSError) -> str:
        return aws_error_type(error)[0]

    @staticmethod
    def _operation(request: HttpRequest) -> tuple[str, AwsOperation]:
        target = inputs.header(request.headers, "X-Amz-Target", error=UnknownOperation) or ""
        name = target.removeprefix(TARGET_PREFIX)
        operation = OPERATIONS.get(name) if target.startswith(TARGET_PREFIX) else None
        if operation is None:
            raise UnknownOperation(
                f"unknown operation {target[:64]!r}; this server offers {', '.join(sorted(OPERATIONS))}"
            )
        return name, operation


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        return inputs.json_object(body)
    except inputs.MalformedJson as error:
        raise MalformedBody(error.message) from None
