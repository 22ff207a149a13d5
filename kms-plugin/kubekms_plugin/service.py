"""``v2.KeyManagementService`` on grpc.aio: Status from memory, Encrypt and Decrypt via the keyring.

Requests are parsed by :func:`rpc_handler`'s deserializers, which never raise: grpc.aio
answers a deserializer's exception with UNKNOWN and a parser's message; a malformed message
is the caller's error and gets INVALID_ARGUMENT here instead.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message

from kubekms_plugin.keyring import Keyring, PluginError
from kubekms_plugin.metrics import PluginMetrics
from kubekms_plugin.v2 import api_pb2, api_pb2_grpc

logger = logging.getLogger(__name__)

API_VERSION = "v2"
Reply = TypeVar("Reply")
Request = TypeVar("Request", bound=Message)
SERVICE = api_pb2.DESCRIPTOR.services_by_name["KeyManagementService"].full_name


class Malformed:
    """Stands for a request body that is not a valid protobuf message of the method's type."""


def _lenient(parse: Callable[[bytes], Request]) -> Callable[[bytes], Request | Malformed]:
    def deserialize(data: bytes) -> Request | Malformed:
        try:
            return parse(data)
        except DecodeError:  # corrupt wire format, invalid UTF-8 in a string field, too deep
            return Malformed()

    return deserialize


class KeyManagementService(api_pb2_grpc.KeyManagementServiceServicer):
    def __init__(self, keyring: Keyring, metrics: PluginMetrics) -> None:
        self._keyring = keyring
        self._metrics = metrics

    async def _observe(
        self, method: str, request: object, context: grpc.aio.ServicerContext, call: Callable[[], Awaitable[Reply]]
    ) -> Reply:
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            if isinstance(request, Malformed):
                raise PluginError(grpc.StatusCode.INVALID_ARGUMENT, f"the request is not a valid {method}Request")
            return await call()
        except PluginError as error:
            code = error.code
            logger.warning(
                "call refused", extra={"fields": {"method": method, "code": code.name, "reason": error.message}}
            )
            await context.abort(error.code, error.message)
            raise  # abort raises; this line is never reached
        except Exception:
            code = grpc.StatusCode.INTERNAL
            logger.exception("call failed", extra={"fields": {"method": method}})
            await context.abort(grpc.StatusCode.INTERNAL, "internal error in the kubekms plugin (see its log)")
            raise
        finally:
            self._metrics.calls.labels(method, code.name).inc()
            self._metrics.latency.labels(method).observe(time.perf_counter() - started)

    async def Status(self, request: api_pb2.StatusRequest, context: grpc.aio.ServicerContext) -> api_pb2.StatusResponse:
        async def answer() -> api_pb2.StatusResponse:
            healthz = self._keyring.health()
            self._metrics.healthy.set(1 if healthz == "ok" else 0)
            return api_pb2.StatusResponse(version=API_VERSION, healthz=healthz, key_id=self._keyring.announce())

        return await self._observe("Status", request, context, answer)

    async def Encrypt(
        self, request: api_pb2.EncryptRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.EncryptResponse:
        async def answer() -> api_pb2.EncryptResponse:
            ciphertext, key_id, annotations = await self._keyring.encrypt(request.plaintext)
            return api_pb2.EncryptResponse(ciphertext=ciphertext, key_id=key_id, annotations=annotations)

        return await self._observe("Encrypt", request, context, answer)

    async def Decrypt(
        self, request: api_pb2.DecryptRequest, context: grpc.aio.ServicerContext
    ) -> api_pb2.DecryptResponse:
        async def answer() -> api_pb2.DecryptResponse:
            plaintext = await self._keyring.decrypt(request.ciphertext, request.key_id, dict(request.annotations))
            return api_pb2.DecryptResponse(plaintext=plaintext)

        return await self._observe("Decrypt", request, context, answer)


def rpc_handler(service: KeyManagementService) -> grpc.GenericRpcHandler:
    """The service's three methods for ``server.add_generic_rpc_handlers``, with lenient parsing."""
    methods: dict[str, Any] = {}
    for name, request, reply in (
        ("Status", api_pb2.StatusRequest, api_pb2.StatusResponse),
        ("Encrypt", api_pb2.EncryptRequest, api_pb2.EncryptResponse),
        ("Decrypt", api_pb2.DecryptRequest, api_pb2.DecryptResponse),
    ):
        methods[name] = grpc.unary_unary_rpc_method_handler(
            getattr(service, name),
            request_deserializer=_lenient(request.FromString),
            response_serializer=reply.SerializeToString,
        )
    return grpc.method_handlers_generic_handler(SERVICE, methods)
