"""The Cloud KMS REST/JSON mapping (``/v1/projects/*/locations/*/keyRings/...``) on the same call pipeline as gRPC.

Each method's HTTP rule (verb, URI template, body field) is the one the official package's
generated REST transport uses; a request becomes the method's message by the standard
transcoding: path variables, then the body (``*``: the whole message, or one field), then the
query parameters (``$``-prefixed system parameters such as ``$alt`` ignored), parsed with
protobuf's JSON parser. Answers are the messages as protobuf JSON; errors are Google's JSON
error body ``{"error": {"code", "message", "status"}}`` with the matching HTTP status.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from google.cloud.kms_v1.services.key_management_service.transports import rest_base
from google.protobuf import json_format

from kubekms.errors import InvalidArgument
from kubekms.server.gcp_grpc import METHODS, CloudKmsService, GcpMethod, GcpRequest
from kubekms.wire import inputs

# the generated REST transport's per-method HTTP rules (the service descriptor is not in the package)
_RULES = rest_base._BaseKeyManagementServiceRestTransport
MAX_BODY_BYTES = 256 * 1024
REQUEST_SECONDS = 30.0  # a body must arrive whole within this (the HTTP front's limit for a whole request)
JSON_TYPE = "application/json"
_VARIABLE = re.compile(r"\{([a-z_.]+)(?:=([^}]+))?\}")


@dataclass(frozen=True)
class Route:
    name: str
    method: GcpMethod
    verb: str
    path: re.Pattern[str]
    fields: tuple[str, ...]  # the path variables' field paths, in group order
    body: str | None


def _segment_pattern(template: str) -> str:
    parts = []
    for segment in template.split("/"):
        parts.append({"*": "[^/]+", "**": ".+"}.get(segment, re.escape(segment)))
    return "/".join(parts)


def compile_route(name: str, method: GcpMethod, rule: Mapping[str, str]) -> Route:
    uri, pattern, fields, position = rule["uri"], "", [], 0
    for match in _VARIABLE.finditer(uri):
        pattern += re.escape(uri[position : match.start()])
        pattern += f"({_segment_pattern(match.group(2) or '*')})"
        fields.append(match.group(1))
        position = match.end()
    pattern += re.escape(uri[position:])
    return Route(name, method, rule["method"].upper(), re.compile(pattern), tuple(fields), rule.get("body"))


ROUTES = tuple(
    compile_route(name, method, getattr(_RULES, f"_Base{name}")._get_http_options()[0])
    for name, method in METHODS.items()
)


def _put(data: dict[str, Any], field_path: str, value: Any) -> None:
    *parents, last = field_path.split(".")
    for parent in parents:
        child = data.setdefault(parent, {})
        if not isinstance(child, dict):
            raise InvalidArgument(f"{field_path}: {parent} is not a message")
        data = child
    data[last] = value


def transcode(route: Route, path_values: tuple[str, ...], query: Mapping[str, str], body: bytes) -> Any:
    """The route's request message from the HTTP request; InvalidArgument names what is wrong."""
    data: dict[str, Any] = {}
    if route.body is not None and body:
        payload = inputs.json_object(body)  # every body is a message: depth, size and text limits of the other wires
        if route.body == "*":
            data.update(payload)
        else:
            data[route.body] = payload
    for key, value in query.items():
        if not key.startswith("$"):
            _put(data, key, value)
    for field_path, value in zip(route.fields, path_values, strict=True):
        _put(data, field_path, value)
    message = route.method.request_type.pb()()
    try:
        json_format.ParseDict(data, message)
    except (json_format.ParseError, ValueError, TypeError) as error:
        raise InvalidArgument(f"invalid {route.name}Request: {str(error)[:200]}") from None
    return route.method.request_type.wrap(message)


def _json_response(status: int, payload: object) -> web.Response:
    return web.Response(status=status, body=json.dumps(payload).encode(), content_type=JSON_TYPE)


def _refused(status: int, message: str, code: str) -> web.Response:
    """An error before the body was read whole: the connection closes instead of draining the rest."""
    refused = _json_response(status, {"error": {"code": status, "message": message, "status": code}})
    refused.force_close()
    return refused


class CloudKmsRest:
    """The aiohttp application of the REST mapping over one :class:`CloudKmsService`."""

    def __init__(self, service: CloudKmsService) -> None:
        self._service = service

    def build(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/{tail:[\\s\\S]*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        # request.path is percent-decoded: an encoded slash (r%2FcryptoKeys%2Fk) would become a separator and
        # reach a resource a path-matching proxy or audit rule never saw; no Cloud KMS id holds a slash
        encoded_slash = "%2f" in request.rel_url.raw_path.lower()
        for route in ROUTES:
            match = route.path.fullmatch(request.path) if route.verb == request.method else None
            if match is not None and not encoded_slash:
                break
        else:
            error = {"code": 404, "message": f"no Cloud KMS method at {request.method} {request.path[:200]}",
                     "status": "NOT_FOUND"}  # fmt: skip
            return _json_response(404, {"error": error})
        try:
            async with asyncio.timeout(REQUEST_SECONDS):
                body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            message = f"Request payload size exceeds the limit: {MAX_BODY_BYTES} bytes."
            return _refused(400, message, "INVALID_ARGUMENT")
        except TimeoutError:
            return _refused(
                408, f"The request body did not arrive within {REQUEST_SECONDS:.0f} s.", "DEADLINE_EXCEEDED"
            )
        values = match.groups()
        call = GcpRequest(route.name, route.method, request.headers.get("Authorization"),
                          lambda: transcode(route, values, request.query, body), request.remote or "-")  # fmt: skip
        outcome = await self._service.rest_pipeline.handle(call)
        if outcome.http_status != 200:
            error = {"code": outcome.http_status, "message": outcome.message, "status": outcome.code.name}
            return _json_response(outcome.http_status, {"error": error})
        return _json_response(200, json_format.MessageToDict(route.method.response_type.pb(outcome.answer)))
