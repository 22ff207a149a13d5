"""``v2.KeyManagementService`` on gRPC's threaded server: the gRPC adapter over the :class:`Keyring`.

It owns what belongs to the transport: the request limits of the KMS v2 API, the
annotation map, and the status code of every refusal (:data:`STATUS_OF`). Its methods run on
gRPC's call threads: Status is answered from memory, and Encrypt and Decrypt seal and open
there when a usable or cached KEK exists; only a call that needs the backend (a new KEK, a
cache miss) hands its work to the event loop and waits for it (:meth:`KeyManagementService._on_loop`).
Requests are parsed by :func:`rpc_handler`'s deserializers, which never raise: gRPC answers a
deserializer's exception with INTERNAL; a malformed message is the caller's error and gets
INVALID_ARGUMENT here instead.

The call path allocates only what the answer needs: label children are bound once, the
Status answer is serialised only when it changes, and a well-formed annotation map is read in
place.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc
from google.protobuf.message import DecodeError, Message
from prometheus_client.metrics import Counter

from kubekms.plugin_ciphertext import KEK_ANNOTATION
from kubekms_plugin.call_threads import CallThreads
from kubekms_plugin.keyring import (
    BackendFailure,
    BadCiphertext,
    ForeignKeyId,
    KeyNotEnabled,
    Keyring,
    KeyringError,
)
from kubekms_plugin.metrics import PluginMetrics
from kubekms_plugin.v2 import api_pb2, api_pb2_grpc

logger = logging.getLogger(__name__)

API_VERSION = "v2"
MAX_PLAINTEXT = 512
MAX_CIPHERTEXT = 1024
MAX_KEY_ID = 1024
MAX_ANNOTATIONS = 32 * 1024
INVALID = grpc.StatusCode.INVALID_ARGUMENT
STATUS_OF: dict[type[KeyringError], grpc.StatusCode] = {
    BadCiphertext: INVALID,
    ForeignKeyId: grpc.StatusCode.FAILED_PRECONDITION,
    KeyNotEnabled: grpc.StatusCode.FAILED_PRECONDITION,
}
Request = TypeVar("Request", bound=Message)
Result = TypeVar("Result")
Context = grpc.ServicerContext
Handler = Callable[[Any, Any, Context], Any]
SERVICE = api_pb2.DESCRIPTOR.services_by_name["KeyManagementService"].full_name


class Refused(Exception):
    """A request the API's limits refuse, answered with this code and message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def status_of(error: KeyringError) -> grpc.StatusCode:
    if isinstance(error, BackendFailure):
        return grpc.StatusCode.UNAVAILABLE if error.retryable else grpc.StatusCode.FAILED_PRECONDITION
    return STATUS_OF[type(error)]


class Malformed:
    """Stands for a request body that is not a valid protobuf message of the method's type."""


def _lenient(parse: Callable[[bytes], Request]) -> Callable[[bytes], Request | Malformed]:
    def deserialize(data: bytes) -> Request | Malformed:
        try:
            return parse(data)
        except DecodeError:  # corrupt wire format, invalid UTF-8 in a string field, too deep
            return Malformed()

    return deserialize


def check_plaintext(plaintext: bytes) -> None:
    if not plaintext or len(plaintext) > MAX_PLAINTEXT:
        raise Refused(INVALID, f"plaintext must be 1 to {MAX_PLAINTEXT} bytes")


def check_decrypt(request: api_pb2.DecryptRequest) -> bytes:
    """Enforce the API's limits on a Decrypt request; the wrapped KEK from its annotation."""
    ciphertext = request.ciphertext
    if not ciphertext or len(ciphertext) > MAX_CIPHERTEXT:
        raise Refused(INVALID, f"ciphertext must be 1 to {MAX_CIPHERTEXT} bytes")
    key_id = request.key_id
    size = len(key_id) if key_id.isascii() else len(key_id.encode())
    if not size or size > MAX_KEY_ID:
        raise Refused(INVALID, f"key_id must be 1 to {MAX_KEY_ID} bytes")
    annotations = request.annotations
    if len(annotations) == 1:  # the usual request, read in place
        wrapped = annotations.get(KEK_ANNOTATION)
        if wrapped and len(KEK_ANNOTATION) + len(wrapped) <= MAX_ANNOTATIONS:
            return wrapped
    return _wrapped_kek(annotations)


def _wrapped_kek(annotations: Mapping[str, bytes]) -> bytes:
    if sum(len(key.encode()) + len(value) for key, value in annotations.items()) > MAX_ANNOTATIONS:
        raise Refused(INVALID, "annotations exceed 32 KiB")
    unknown = sorted(set(annotations) - {KEK_ANNOTATION})
    if unknown:
        raise Refused(INVALID, f"unknown annotation(s) {', '.join(unknown)}; expected {KEK_ANNOTATION}")
    wrapped = annotations.get(KEK_ANNOTATION)
    if not wrapped:
        raise Refused(INVALID, f"annotation {KEK_ANNOTATION} is missing: the data was not encrypted by kubekms")
    return wrapped


def _observed(method: str) -> Callable[[Handler], Handler]:
    """Metrics, logging and the status code of a refusal, once for the three methods."""

    def wrap(handler: Handler) -> Handler:
        def call(self: KeyManagementService, request: Any, context: Context) -> Any:
            started = time.perf_counter()
            code = grpc.StatusCode.OK
            try:
                if isinstance(request, Malformed):
                    raise Refused(INVALID, f"the request is not a valid {method}Request")
                return handler(self, request, context)
            except (Refused, KeyringError) as error:
                code = error.code if isinstance(error, Refused) else status_of(error)
                logger.warning(
                    "call refused", extra={"fields": {"method": method, "code": code.name, "reason": error.message}}
                )
                context.abort(code, error.message)
            except Exception:
                code = grpc.StatusCode.INTERNAL
                logger.exception("call failed", extra={"fields": {"method": method}})
                context.abort(code, "internal error in the kubekms plugin (see its log)")
            finally:
                self._record(method, code, time.perf_counter() - started)

        return call

    return wrap


class KeyManagementService(api_pb2_grpc.KeyManagementServiceServicer):
    """The three methods, called on gRPC's threads (Encrypt and Decrypt on ``threads``); ``loop``
    runs the keyring's backend calls."""

    def __init__(
        self, keyring: Keyring, metrics: PluginMetrics, loop: asyncio.AbstractEventLoop, threads: CallThreads
    ) -> None:
        self._keyring = keyring
        self._metrics = metrics
        self._loop = loop
        self._threads = threads
        self._calls: dict[tuple[str, grpc.StatusCode], Counter] = {}
        self._latency = {method: metrics.latency.labels(method) for method in ("Status", "Encrypt", "Decrypt")}
        # (healthz, key_id, the StatusResponse serialised): serialised again only when one changes.
        self._status: tuple[str, str, bytes] = ("", "", b"")
        self._healthy: bool | None = None

    def _record(self, method: str, code: grpc.StatusCode, seconds: float) -> None:
        counter = self._calls.get((method, code))
        if counter is None:
            counter = self._calls[(method, code)] = self._metrics.calls.labels(method, code.name)
        counter.inc()
        self._latency[method].observe(seconds)

    def _on_loop(self, work: Coroutine[Any, Any, Result], context: Context) -> Result:
        """Run keyring work that needs the backend on the event loop; this call's thread waits."""
        future = asyncio.run_coroutine_threadsafe(work, self._loop)
        try:
            with self._threads.waiting():
                return future.result(min(context.time_remaining(), threading.TIMEOUT_MAX))
        except TimeoutError:
            future.cancel()  # the caller has gone: its deadline passed
            raise Refused(grpc.StatusCode.DEADLINE_EXCEEDED, "the backend did not answer within the deadline") from None

    @_observed("Status")
    def Status(self, request: api_pb2.StatusRequest, context: Context) -> bytes:
        healthz, key_id = self._keyring.health(), self._keyring.announce()
        answer = self._status
        if answer[0] != healthz or answer[1] != key_id:
            serialised = api_pb2.StatusResponse(version=API_VERSION, healthz=healthz, key_id=key_id).SerializeToString()
            answer = self._status = (healthz, key_id, serialised)
        healthy = healthz == "ok"
        if healthy is not self._healthy:
            self._healthy = healthy
            self._metrics.healthy.set(1 if healthy else 0)
        return answer[2]

    @_observed("Encrypt")
    def Encrypt(self, request: api_pb2.EncryptRequest, context: Context) -> api_pb2.EncryptResponse:
        check_plaintext(request.plaintext)
        sealed = self._keyring.encrypt_now(request.plaintext)
        if sealed is None:  # a new KEK first: the backend
            sealed = self._on_loop(self._keyring.encrypt(request.plaintext), context)
        return api_pb2.EncryptResponse(
            ciphertext=sealed.ciphertext, key_id=sealed.key_id, annotations={KEK_ANNOTATION: sealed.wrapped_kek}
        )

    @_observed("Decrypt")
    def Decrypt(self, request: api_pb2.DecryptRequest, context: Context) -> api_pb2.DecryptResponse:
        wrapped = check_decrypt(request)
        plaintext = self._keyring.decrypt_now(request.ciphertext, request.key_id, wrapped)
        if plaintext is None:  # a KEK not in the cache: the backend unwraps it
            plaintext = self._on_loop(self._keyring.decrypt(request.ciphertext, request.key_id, wrapped), context)
        return api_pb2.DecryptResponse(plaintext=plaintext)


def rpc_handler(service: KeyManagementService, status_threads: ThreadPoolExecutor) -> grpc.GenericRpcHandler:
    """The service's three methods for ``server.add_generic_rpc_handlers``, with lenient parsing;
    Status runs on ``status_threads``, the others on the server's own pool."""
    status = functools.partial(service.Status)
    # gRPC's threaded server runs a behaviour that carries this attribute on that pool (grpc._server):
    # Status, answered from memory, never waits behind calls that wait for the backend.
    setattr(status, "experimental_thread_pool", status_threads)  # noqa: B010 (not a declared attribute)
    methods: dict[str, Any] = {}
    for behaviour, request, serialize in (
        (status, api_pb2.StatusRequest, None),  # Status answers bytes, serialised when the answer changed
        (service.Encrypt, api_pb2.EncryptRequest, api_pb2.EncryptResponse.SerializeToString),
        (service.Decrypt, api_pb2.DecryptRequest, api_pb2.DecryptResponse.SerializeToString),
    ):
        methods[request.__name__.removesuffix("Request")] = grpc.unary_unary_rpc_method_handler(
            behaviour, request_deserializer=_lenient(request.FromString), response_serializer=serialize
        )
    return grpc.method_handlers_generic_handler(SERVICE, methods)
