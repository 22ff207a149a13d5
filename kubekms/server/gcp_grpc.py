"""The Cloud KMS gRPC service of the kubekms server: authenticate, authorise, dispatch, map errors, audit, measure.

``google.cloud.kms.v1.KeyManagementService`` on its own listener (``gcp.listen`` in the config),
with the message types of the official ``google-cloud-kms`` package (proto-plus wrappers over
Google's descriptors): one generic handler per method, nothing hand-written about the wire.
Methods not in :data:`METHODS` answer UNIMPLEMENTED (gRPC's own answer for an unknown method).

Permissions are the v1.0 wire's operation names, so one principals file governs all three wires:

=============================================  ==============================  =========
Cloud KMS method                               permission                      scope
=============================================  ==============================  =========
CreateKeyRing, CreateCryptoKey                 create-key                      account
GetKeyRing, ListKeyRings, ListCryptoKeys       list-keys                       account
GetCryptoKey, GetCryptoKeyVersion,             describe-key                    key
ListCryptoKeyVersions
UpdateCryptoKey                                batch-key-tags (labels),        key
                                               update-key-rotation-interval
                                               (rotation_period, next_rotation_time)
CreateCryptoKeyVersion,                        rotate-on-demand                key
UpdateCryptoKeyPrimaryVersion
UpdateCryptoKeyVersion                         enable-key / disable-key        key
DestroyCryptoKeyVersion                        schedule-key-deletion           key
RestoreCryptoKeyVersion                        cancel-key-deletion             key
Encrypt                                        encrypt-datakey                 key
Decrypt                                        decrypt-datakey                 key
AsymmetricSign                                 sign                            key
GetPublicKey                                   get-publickey                   key
AsymmetricDecrypt                              decrypt-data                    key
MacSign                                        generate-mac                    key
MacVerify                                      verify-mac                      key
GenerateRandomBytes                            gen-random                      none
ListLocations, GetLocation                     list-keys                       none
(google.cloud.location.Locations)
=============================================  ==============================  =========

"account": only a principal allowed every key; "key": a principal whose ``keys`` list names the
crypto key by its resource name. The project of the resource name is the kubekms project (its
``projects`` list applies). Each call runs through the shared :class:`~kubekms.server.pipeline.Pipeline`
(authorisation, refusal log, audit, metrics) with :class:`GcpWire` as its dialect.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
from google.cloud import kms_v1
from google.cloud.location import locations_pb2  # type: ignore[import-untyped]  # googleapis-common-protos: no stubs
from google.protobuf.message import DecodeError

from kubekms import policies
from kubekms.backend import Backend
from kubekms.errors import (
    AccessDenied,
    AlreadyExists,
    InvalidArgument,
    InvalidCiphertext,
    InvalidState,
    KMSError,
    LimitExceeded,
    NotFound,
    Throttled,
    Unauthenticated,
    Unavailable,
)
from kubekms.server import gcp_locations as locations
from kubekms.server import gcp_names as names
from kubekms.server import gcp_operations as ops
from kubekms.server import gcp_token
from kubekms.server.audit import AuditLog
from kubekms.server.gcp_auth import JwtVerifier
from kubekms.server.gcp_store import DATABASE_FILE, GcpStore
from kubekms.server.logs import RefusalLog
from kubekms.server.metrics import ServerMetrics
from kubekms.server.operations import KeyScope
from kubekms.server.pipeline import Exchange, Pipeline
from kubekms.server.principals import PrincipalDirectory, PrincipalGrant, context_sealed_as

log = logging.getLogger("kubekms.server.gcp")

SERVICE = "google.cloud.kms.v1.KeyManagementService"
LOCATIONS_SERVICE = "google.cloud.location.Locations"
MAX_MESSAGE_BYTES = 256 * 1024

# (gRPC status, the HTTP status Cloud KMS's REST mapping gives it: REST answers and the refusal log)
STATUS_OF: tuple[tuple[type[KMSError], grpc.StatusCode, int], ...] = (
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED, 401),
    (AccessDenied, grpc.StatusCode.PERMISSION_DENIED, 403),
    (NotFound, grpc.StatusCode.NOT_FOUND, 404),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS, 409),
    (InvalidState, grpc.StatusCode.FAILED_PRECONDITION, 400),
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT, 400),
    (InvalidCiphertext, grpc.StatusCode.INVALID_ARGUMENT, 400),
    (LimitExceeded, grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
    (Throttled, grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
    (Unavailable, grpc.StatusCode.UNAVAILABLE, 503),
)


def grpc_status(error: KMSError) -> tuple[grpc.StatusCode, int]:
    for error_type, code, http_status in STATUS_OF:
        if isinstance(error, error_type):
            return code, http_status
    return grpc.StatusCode.INTERNAL, 500


Target = names.ProjectName | names.LocationName | names.KeyRingName | names.CryptoKeyName
Context = grpc.aio.ServicerContext[Any, Any]  # requests arrive as bytes (parsed in handle), answers are messages


@dataclass(frozen=True)
class Outcome:
    """A call's answer (a response message) or its refusal (status, HTTP status, message)."""

    answer: Any
    code: grpc.StatusCode
    http_status: int
    message: str


@dataclass(frozen=True)
class GcpMethod:
    """``target`` parses the request's resource name (project, and the crypto key for KEY scope)."""

    request_type: Any
    response_type: Any
    handler: Callable[[ops.GcpCall, Any], Awaitable[Any]]
    permission: Callable[[Any], str]
    scope: KeyScope
    target: Callable[[Any], Target]
    # permissions the call needs besides ``permission`` (the pipeline checks that one), on the same key
    also: Callable[[Any], tuple[str, ...]] = lambda request: ()


def _fixed(permission: str) -> Callable[[Any], str]:
    return lambda request: permission


def _key_update_permission(request: kms_v1.UpdateCryptoKeyRequest) -> str:
    paths = set(request.update_mask.paths)
    return "batch-key-tags" if paths == {"labels"} else "update-key-rotation-interval"


def _key_update_also(request: kms_v1.UpdateCryptoKeyRequest) -> tuple[str, ...]:
    """Labels beside rotation fields need batch-key-tags too (the labels carry the operator's ownership)."""
    paths = set(request.update_mask.paths)
    return ("batch-key-tags",) if "labels" in paths and paths != {"labels"} else ()


def version_state_permission(enabling: bool) -> str:
    """The permission that enables (or disables) one version of a key; the web console asks the same."""
    return "enable-key" if enabling else "disable-key"


def _version_update_permission(request: kms_v1.UpdateCryptoKeyVersionRequest) -> str:
    return version_state_permission(request.crypto_key_version.state == ops.State.ENABLED)


def _crypto_key_of(value: str, field: str) -> names.CryptoKeyName:
    target = names.key_or_version_name(value, field)
    return target.crypto_key if isinstance(target, names.CryptoKeyVersionName) else target


DESCRIBE = policies.policy_action("describe-key")
KEY, ACCOUNT, NONE = KeyScope.KEY, KeyScope.ACCOUNT, KeyScope.NONE
T = kms_v1
METHODS: dict[str, GcpMethod] = {
    "CreateKeyRing": GcpMethod(T.CreateKeyRingRequest, T.KeyRing, ops.create_key_ring, _fixed("create-key"), ACCOUNT,
                               lambda r: names.location_name(r.parent, "parent")),
    "GetKeyRing": GcpMethod(T.GetKeyRingRequest, T.KeyRing, ops.get_key_ring, _fixed("list-keys"), ACCOUNT,
                            lambda r: names.key_ring_name(r.name, "name")),
    "ListKeyRings": GcpMethod(T.ListKeyRingsRequest, T.ListKeyRingsResponse, ops.list_key_rings,
                              _fixed("list-keys"), ACCOUNT, lambda r: names.location_name(r.parent, "parent")),
    "CreateCryptoKey": GcpMethod(T.CreateCryptoKeyRequest, T.CryptoKey, ops.create_crypto_key, _fixed("create-key"),
                                 ACCOUNT, lambda r: names.key_ring_name(r.parent, "parent")),
    "ListCryptoKeys": GcpMethod(T.ListCryptoKeysRequest, T.ListCryptoKeysResponse, ops.list_crypto_keys,
                                _fixed("list-keys"), ACCOUNT, lambda r: names.key_ring_name(r.parent, "parent")),
    "GetCryptoKey": GcpMethod(T.GetCryptoKeyRequest, T.CryptoKey, ops.get_crypto_key, _fixed("describe-key"), KEY,
                              lambda r: names.crypto_key_name(r.name, "name")),
    "UpdateCryptoKey": GcpMethod(T.UpdateCryptoKeyRequest, T.CryptoKey, ops.update_crypto_key,
                                 _key_update_permission, KEY,
                                 lambda r: names.crypto_key_name(r.crypto_key.name, "crypto_key.name"),
                                 also=_key_update_also),
    "CreateCryptoKeyVersion": GcpMethod(T.CreateCryptoKeyVersionRequest, T.CryptoKeyVersion,
                                        ops.create_crypto_key_version, _fixed("rotate-on-demand"), KEY,
                                        lambda r: names.crypto_key_name(r.parent, "parent")),
    "GetCryptoKeyVersion": GcpMethod(T.GetCryptoKeyVersionRequest, T.CryptoKeyVersion, ops.get_crypto_key_version,
                                     _fixed("describe-key"), KEY, lambda r: _crypto_key_of(r.name, "name")),
    "ListCryptoKeyVersions": GcpMethod(T.ListCryptoKeyVersionsRequest, T.ListCryptoKeyVersionsResponse,
                                       ops.list_crypto_key_versions, _fixed("describe-key"), KEY,
                                       lambda r: names.crypto_key_name(r.parent, "parent")),
    "UpdateCryptoKeyVersion": GcpMethod(T.UpdateCryptoKeyVersionRequest, T.CryptoKeyVersion,
                                        ops.update_crypto_key_version, _version_update_permission, KEY,
                                        lambda r: _crypto_key_of(r.crypto_key_version.name,
                                                                 "crypto_key_version.name")),
    "UpdateCryptoKeyPrimaryVersion": GcpMethod(T.UpdateCryptoKeyPrimaryVersionRequest, T.CryptoKey,
                                               ops.update_crypto_key_primary_version, _fixed("rotate-on-demand"),
                                               KEY, lambda r: names.crypto_key_name(r.name, "name")),
    "DestroyCryptoKeyVersion": GcpMethod(T.DestroyCryptoKeyVersionRequest, T.CryptoKeyVersion,
                                         ops.destroy_crypto_key_version, _fixed("schedule-key-deletion"), KEY,
                                         lambda r: _crypto_key_of(r.name, "name")),
    "RestoreCryptoKeyVersion": GcpMethod(T.RestoreCryptoKeyVersionRequest, T.CryptoKeyVersion,
                                         ops.restore_crypto_key_version, _fixed("cancel-key-deletion"), KEY,
                                         lambda r: _crypto_key_of(r.name, "name")),
    "Encrypt": GcpMethod(T.EncryptRequest, T.EncryptResponse, ops.encrypt, _fixed("encrypt-datakey"), KEY,
                         lambda r: _crypto_key_of(r.name, "name")),
    "Decrypt": GcpMethod(T.DecryptRequest, T.DecryptResponse, ops.decrypt, _fixed("decrypt-datakey"), KEY,
                         lambda r: names.crypto_key_name(r.name, "name")),
    "AsymmetricSign": GcpMethod(T.AsymmetricSignRequest, T.AsymmetricSignResponse, ops.asymmetric_sign, _fixed("sign"),
                                KEY, lambda r: _crypto_key_of(r.name, "name")),
    "GetPublicKey": GcpMethod(T.GetPublicKeyRequest, T.PublicKey, ops.get_public_key, _fixed("get-publickey"), KEY,
                              lambda r: _crypto_key_of(r.name, "name")),
    "AsymmetricDecrypt": GcpMethod(T.AsymmetricDecryptRequest, T.AsymmetricDecryptResponse, ops.asymmetric_decrypt,
                                   _fixed("decrypt-data"), KEY, lambda r: _crypto_key_of(r.name, "name")),
    "MacSign": GcpMethod(T.MacSignRequest, T.MacSignResponse, ops.mac_sign, _fixed("generate-mac"), KEY,
                         lambda r: _crypto_key_of(r.name, "name")),
    "MacVerify": GcpMethod(T.MacVerifyRequest, T.MacVerifyResponse, ops.mac_verify, _fixed("verify-mac"), KEY,
                           lambda r: _crypto_key_of(r.name, "name")),
    "GenerateRandomBytes": GcpMethod(T.GenerateRandomBytesRequest, T.GenerateRandomBytesResponse,
                                     ops.generate_random_bytes, _fixed("gen-random"), NONE,
                                     lambda r: names.location_name(r.location, "location")),
}  # fmt: skip
L = locations.RawMessage
LOCATION_METHODS: dict[str, GcpMethod] = {
    "ListLocations": GcpMethod(L(locations_pb2.ListLocationsRequest), L(locations_pb2.ListLocationsResponse),
                               locations.list_locations, _fixed("list-keys"), NONE,
                               lambda r: names.project_name(r.name, "name")),
    "GetLocation": GcpMethod(L(locations_pb2.GetLocationRequest), L(locations_pb2.Location), locations.get_location,
                             _fixed("list-keys"), NONE, lambda r: names.location_name(r.name, "name")),
}  # fmt: skip
SERVICES = {SERVICE: METHODS, LOCATIONS_SERVICE: LOCATION_METHODS}
ALL_METHODS = {**METHODS, **LOCATION_METHODS}


@dataclass(frozen=True)
class GcpRequest:
    """One Cloud KMS call as its transport received it; ``parse`` makes the method's message (InvalidArgument)."""

    name: str
    method: GcpMethod
    authorization: str | None
    parse: Callable[[], Any]
    client: str


@dataclass(frozen=True)
class GcpBoundCall:
    """A parsed Cloud KMS call, ready to run on its project's keystore and Cloud KMS records."""

    service: CloudKmsService
    method: GcpMethod
    message: Any
    target: Target
    principal: PrincipalGrant
    exchange: Exchange

    def scope(self) -> KeyScope:
        return self.method.scope

    def key_ref(self) -> str:
        return str(self.target)  # principals name crypto keys by resource name

    def _aad_context(self) -> Mapping[str, str]:
        """Encrypt's and Decrypt's AAD as the encryption context it seals as: the same bytes open, on any wire, what
        that context sealed, so key policies and grants see it (S9-H1-8); any other AAD or method: none."""
        aad = getattr(self.message, "additional_authenticated_data", b"")
        try:
            return context_sealed_as(aad.decode()) if aad else {}
        except UnicodeDecodeError:
            return {}

    async def run(self, backend: Backend) -> Any:
        action, exchange = policies.policy_action(self.exchange.permission), self.exchange

        def version_policy(action: str) -> Callable[[str], Awaitable[None]]:
            async def authorize(keystore_key_id: str) -> None:  # the version's key policy; key list by resource name
                await self.principal.authorize_action(
                    action,
                    backend,
                    keystore_key_id,
                    account=exchange.project_id,
                    label=exchange.operation,
                    also_named=(self.key_ref(),),
                    context=self._aad_context,
                )

            return authorize

        for permission in self.method.also(self.message):
            self.principal.check_operation(permission, exchange.project_id)
            await self.principal.authorize_key(exchange.operation, backend, self.key_ref(),
                                               account=exchange.project_id, permission=permission)  # fmt: skip
        call = self.service.gcp_call(self.target.project, backend)

        async def tag_change(tag_keys: Iterable[str]) -> None:
            await self.principal.authorize_tag_change(backend, self.key_ref(), tag_keys, account=exchange.project_id)

        call = replace(call, authorize=version_policy(action), may_describe=version_policy(DESCRIBE),
                       authorize_tag_change=tag_change)  # fmt: skip
        return await self.method.handler(call, self.message)


@dataclass(frozen=True)
class Routed:
    """The parsed message and its resource name: :meth:`GcpWire.accept` stores it as the exchange's target."""

    message: Any
    target: Target


def _routed(exchange: Exchange) -> Routed:
    routed = exchange.target
    assert isinstance(routed, Routed), "GcpWire.accept routes every exchange before the pipeline reads its target"
    return routed


class GcpWire:
    """The Cloud KMS dialect for :class:`~kubekms.server.pipeline.Pipeline`: JWT, resource names, status codes."""

    audit_prefix = "gcp:"

    def __init__(self, service: CloudKmsService, name: str) -> None:
        self._service = service
        self.name = name

    def exchange(self, request: GcpRequest) -> Exchange:
        return Exchange(request_id=str(uuid.uuid4()), client=request.client, project_id="-", operation=request.name)

    async def accept(self, request: GcpRequest, exchange: Exchange) -> None:
        principal = self._service.verifier.verify(request.authorization)
        exchange.access_key = principal.access_key
        message = request.parse()
        exchange.target = Routed(message, request.method.target(message))
        exchange.permission = request.method.permission(message)

    def project_of(self, principal: PrincipalGrant, exchange: Exchange) -> str:
        return str(_routed(exchange).target.project)

    def bind(self, exchange: Exchange, request: GcpRequest) -> GcpBoundCall:
        routed = _routed(exchange)
        principal = self._service.principals.get(exchange.access_key)
        assert principal is not None, "the pipeline binds a call only for a principal of the directory"
        return GcpBoundCall(self._service, request.method, routed.message, routed.target, principal, exchange)

    def answer_key(self, answer: Any) -> str:
        return ""

    def render(self, answer: Any, exchange: Exchange) -> Outcome:
        return Outcome(answer, grpc.StatusCode.OK, 200, "")

    def render_error(self, error: KMSError, exchange: Exchange) -> Outcome:
        code, http_status = grpc_status(error)
        return Outcome(None, code, http_status, error.message)

    def status_of(self, response: Outcome) -> int:
        return response.http_status

    def refusal_reason(self, error: KMSError) -> str:
        return grpc_status(error)[0].name


class CloudKmsService:
    """The projects' Cloud KMS records (one :class:`GcpStore` per project) and a pipeline per transport."""

    def __init__(
        self,
        *,
        state_dir: Path,
        principals: PrincipalDirectory,
        verifier: JwtVerifier,
        backend_for: Callable[[str], Awaitable[Backend]],
        audit: AuditLog,
        metrics: ServerMetrics,
        refusals: RefusalLog,
        clock: Callable[[], float] = time.time,
        locations: tuple[str, ...] = names.DEFAULT_LOCATIONS,
    ) -> None:
        self._state_dir = state_dir
        self.locations = locations
        self.principals = principals
        self.verifier = verifier
        self._backend_for = backend_for
        self._metrics = metrics
        self._clock = clock
        self._stores: dict[str, tuple[GcpStore, asyncio.Lock]] = {}
        self.refusals = refusals
        self.audit = audit
        self.token_failures = gcp_token.TokenFailures()  # the token endpoint's refused exchanges, per client

        def pipeline(wire: str) -> Pipeline[GcpRequest, Outcome]:
            return Pipeline(GcpWire(self, wire), principals, backend_for, audit, metrics, refusals)

        self.grpc_pipeline = pipeline("gcp")
        self.rest_pipeline = pipeline("gcp-rest")

    def gcp_call(self, project: str, backend: Backend) -> ops.GcpCall:
        entry = self._stores.get(project)
        if entry is None:  # the project's directory exists: the pipeline opened its keystore first
            entry = self._stores[project] = (GcpStore(self._state_dir / project), asyncio.Lock())
        store, lock = entry
        return ops.GcpCall(
            backend=backend,
            store=store,
            lock=lock,
            now=datetime.fromtimestamp(self._clock(), UTC),
            locations=self.locations,
        )

    def close(self) -> None:
        for store, _ in self._stores.values():
            store.close()
        self._stores.clear()

    async def run_due_work(self) -> None:
        """Automatic rotation of the crypto keys whose next_rotation_time passed, in every project that has any."""
        on_disk = {path.parent.name for path in self._state_dir.glob(f"*/{DATABASE_FILE}")}  # after a restart too
        for project in sorted(on_disk | set(self._stores)):
            if not names.PROJECT_PATTERN.fullmatch(project):
                continue
            call = self.gcp_call(project, await self._backend_for(project))
            rotated, refused = await ops.rotate_due_keys(call, project)
            if rotated:
                self._metrics.keys_rotated.inc(len(rotated))
                log.info("Cloud KMS automatic rotation", extra={"fields": {"project": project, "rotated": rotated}})
            if refused:
                log.warning("Cloud KMS automatic rotation refused", extra={"fields": {"project": project,
                                                                                      "refused": refused}})  # fmt: skip

    def rpc_handlers(self) -> tuple[grpc.GenericRpcHandler, ...]:
        """Cloud KMS's service and its Locations mixin."""
        return tuple(self._service_handler(service, methods) for service, methods in SERVICES.items())

    def _service_handler(self, service: str, methods: dict[str, GcpMethod]) -> grpc.GenericRpcHandler:
        handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {
            name: grpc.unary_unary_rpc_method_handler(
                self._bind(name, method),
                request_deserializer=None,  # parsed in handle(): a malformed message is INVALID_ARGUMENT, not INTERNAL
                response_serializer=method.response_type.serialize,
            )
            for name, method in methods.items()
        }
        return grpc.method_handlers_generic_handler(service, handlers)

    def _bind(self, name: str, method: GcpMethod) -> Callable[[Any, Context], Awaitable[Any]]:
        async def handle(request: Any, context: Context) -> Any:
            return await self.handle(name, method, request, context)

        return handle

    async def handle(self, name: str, method: GcpMethod, body: bytes, context: Context) -> Any:
        def parse() -> Any:
            try:
                return method.request_type.deserialize(body)
            except DecodeError:
                raise InvalidArgument(f"the request is not a valid {name}Request message") from None

        request = GcpRequest(name, method, _metadata(context, "authorization"), parse, context.peer() or "-")
        outcome = await self.grpc_pipeline.handle(request)
        if outcome.code is not grpc.StatusCode.OK:
            await context.abort(outcome.code, outcome.message)
        return outcome.answer


def _metadata(context: Context, key: str) -> str | None:
    for item_key, value in context.invocation_metadata() or ():
        if item_key == key:
            return value if isinstance(value, str) else None
    return None
