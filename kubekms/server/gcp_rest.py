"""The Cloud KMS REST/JSON mapping (``/v1/projects/*/locations/*/keyRings/...``) on the same call pipeline as gRPC.

Each method's HTTP rule (verb, URI template, body field) is the one the official package's
generated REST transport uses; a request becomes the method's message by the standard
transcoding: path variables, then the body (``*``: the whole message, or one field), then the
query parameters, which bind no field the body carries (as google.api.http has it), each read as
its field's type (booleans, enum numbers, FieldMask paths in either case). ``$``-prefixed system
parameters and Google's standard ones (``alt=json``, which the discovery-based clients send on every
call, ``prettyPrint``, ``fields``: the whole message is answered...) are ignored, but for
``$alt=json;enum-encoding=int`` or ``alt=...``: enums answered as numbers; an ``alt`` other than
JSON is refused. The message is parsed with protobuf's JSON parser, bytes fields' base64 first read
strictly. A POST may name its method in
``X-HTTP-Method-Override`` (Java's transport sends PATCH so). A single-field body of ``""`` or
``null`` sets nothing (google-gax's REST transport sends ``""`` for a field it was not given).
Answers are the messages as protobuf JSON; errors are Google's JSON error body
``{"error": {"code", "message", "status"}}`` with the matching HTTP status.
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
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from kubekms.errors import InvalidArgument
from kubekms.server import gcp_token
from kubekms.server.gcp_grpc import ALL_METHODS, METHODS, CloudKmsService, GcpMethod, GcpRequest
from kubekms.wire import inputs

# the generated REST transport's per-method HTTP rules (the service descriptor is not in the package)
_RULES = rest_base._BaseKeyManagementServiceRestTransport
MAX_BODY_BYTES = 256 * 1024
REQUEST_SECONDS = 30.0  # a body must arrive whole within this (the HTTP front's limit for a whole request)
JSON_TYPE = "application/json"
_VARIABLE = re.compile(r"\{([a-z_.]+)(?:=([^}]+))?\}")
# google-gax's REST transport (Node's fallback) sends '""' as the body of a field it was not given
UNSET_BODIES = (b'""', b"null")
# the query parameter with which a client asks for enums as numbers (Node's fallback always does)
NUMERIC_ENUMS = "enum-encoding=int"
ALT_PARAMETERS = ("$alt", "alt")
# Google's standard query parameters (its front end's, no request message's field; the discovery document offers
# them on every method): taken and ignored, but for alt (ALT_PARAMETERS); oauth_token and access_token are not taken
STANDARD_PARAMETERS = frozenset({"alt", "fields", "key", "prettyPrint", "quotaUser", "trace", "userIp"})
METHOD_OVERRIDE = "X-HTTP-Method-Override"
# base64 as Google's front end reads it: the standard or URL-safe alphabet, padded to whole quanta or not padded
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/_-]{4})*(?:[A-Za-z0-9+/_-]{2}(?:==)?|[A-Za-z0-9+/_-]{3}=?)?")


@dataclass(frozen=True)
class Route:
    name: str
    method: GcpMethod
    verb: str
    path: re.Pattern[str]
    fields: tuple[str, ...]  # the path variables' field paths, in group order
    body: str | None


def _segment_pattern(template: str, segment: str) -> str:
    parts = []
    for part in template.split("/"):
        parts.append({"*": segment, "**": ".+"}.get(part, re.escape(part)))
    return "/".join(parts)


def compile_route(name: str, method: GcpMethod, rule: Mapping[str, str], segment: str = "[^/]+") -> Route:
    uri, pattern, fields, position = rule["uri"], "", [], 0
    for match in _VARIABLE.finditer(uri):
        pattern += re.escape(uri[position : match.start()])
        pattern += f"({_segment_pattern(match.group(2) or '*', segment)})"
        fields.append(match.group(1))
        position = match.end()
    pattern += re.escape(uri[position:])
    return Route(name, method, rule["method"].upper(), re.compile(pattern), tuple(fields), rule.get("body"))


ROUTES = tuple(
    compile_route(name, method, getattr(_RULES, f"_Base{name}")._get_http_options()[0])
    for name, method in ALL_METHODS.items()
)
# the service's other methods (import jobs, IAM...): UNIMPLEMENTED, as over gRPC;
# checked first, with ids that hold no ":" (no Cloud KMS id does), so keyRings/r:getIamPolicy is no GetKeyRing
NOT_OFFERED = tuple(
    (name.removeprefix("_Base"), rule["method"].upper(), compile_route(name, METHODS["Encrypt"], rule, "[^/:]+").path)
    for name in dir(_RULES)
    if name.startswith("_Base") and name.removeprefix("_Base") not in ALL_METHODS
    for rule in getattr(_RULES, name)._get_http_options()
)


def _camel_paths(mask: str) -> str:
    """A FieldMask's query form with snake_case paths (Google's front end takes them) as protobuf's JSON wants."""
    return ",".join(re.sub(r"_([a-z0-9])", lambda m: m.group(1).upper(), path) for path in mask.split(","))


def _typed(descriptor: Descriptor, field_path: str, value: str) -> Any:
    """A query parameter as its field's JSON value: booleans and enum numbers are text in a query, and a
    FieldMask's paths may be snake_case there; anything else (or an unknown field) as it came, for the parser."""
    message: Descriptor | None = descriptor
    field = None
    for part in field_path.split("."):
        field = (
            None if message is None else message.fields_by_camelcase_name.get(part) or message.fields_by_name.get(part)
        )
        if field is None:
            return value
        message = field.message_type
    if field is None:
        return value
    if field.type == FieldDescriptor.TYPE_BOOL and value in ("true", "false"):
        return value == "true"
    if field.enum_type is not None and value.isascii() and value.isdigit():
        return int(value)
    if field.message_type is not None and field.message_type.full_name == "google.protobuf.FieldMask":
        return _camel_paths(value)
    return value


def _check_base64(descriptor: Descriptor, data: Mapping[str, Any], at: str = "") -> None:
    """Every bytes field's value in ``data`` (a request as JSON) is base64 of one of Google's alphabets, strictly.

    protobuf's parser drops what is outside the alphabet and any surplus padding: one corrupted character of a
    plaintext would be other bytes encrypted without a word, where Google's front end refuses the request."""
    for key, value in data.items():
        field = descriptor.fields_by_camelcase_name.get(key) or descriptor.fields_by_name.get(key)
        if field is None or value is None:
            continue  # the parser names an unknown field; null is the default
        values = value if field.is_repeated and isinstance(value, list) else [value]
        if field.type == FieldDescriptor.TYPE_BYTES:
            for item in values:
                if isinstance(item, str) and not _BASE64.fullmatch(item):
                    raise InvalidArgument(f"Invalid value at '{at}{field.name}' (TYPE_BYTES), Base64 decoding failed.")
        elif field.message_type is not None and not field.message_type.GetOptions().map_entry:
            for item in values:
                if isinstance(item, dict):
                    _check_base64(field.message_type, item, f"{at}{field.name}.")


def _body_names(descriptor: Descriptor, body: str | None) -> tuple[str, ...]:
    """The names (proto and JSON) of a single-field body's field; none for no body or ``*``."""
    field = descriptor.fields_by_name.get(body) if body not in (None, "*") else None
    return () if field is None else (field.name, field.json_name)


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
    if route.body not in (None, "*") and body.strip() in UNSET_BODIES:
        body = b""
    if route.body is not None and body:
        payload = inputs.json_object(body)  # every body is a message: depth, size and text limits of the other wires
        if route.body == "*":
            data.update(payload)
        else:
            data[route.body] = payload
    request_type = route.method.request_type.pb()
    in_body = _body_names(request_type.DESCRIPTOR, route.body)
    for key, value in query.items():
        if key in ALT_PARAMETERS and value.split(";")[0] != "json":
            raise InvalidArgument(f"{key}: this server answers JSON only ({key}=json)")
        if key.startswith("$") or key in STANDARD_PARAMETERS:
            continue
        if route.body == "*" or key.split(".")[0] in in_body:  # google.api.http: the query binds no field of the body
            carried = "every field" if route.body == "*" else f"field {route.body}"
            raise InvalidArgument(f"Cannot bind query parameter '{key[:64]}': the body of a {route.name}Request "
                                  f"carries {carried}")  # fmt: skip
        _put(data, key, _typed(request_type.DESCRIPTOR, key, value))
    for field_path, value in zip(route.fields, path_values, strict=True):
        _put(data, field_path, value)
    _check_base64(request_type.DESCRIPTOR, data)
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


def _verb(request: web.Request) -> str:
    """The HTTP method, or the one a POST names in X-HTTP-Method-Override: Java's REST transport sends PATCH so
    (HttpURLConnection has no PATCH), and Google's front end takes it."""
    override = request.headers.get(METHOD_OVERRIDE, "").upper()
    return override if request.method == "POST" and override else request.method


def _not_offered(verb: str, path: str) -> web.Response | None:
    for name, rule_verb, pattern in NOT_OFFERED:
        if rule_verb == verb and pattern.fullmatch(path):
            error = {"code": 501, "message": f"{name} is not implemented by this server", "status": "UNIMPLEMENTED"}
            return _json_response(501, {"error": error})
    return None


class CloudKmsRest:
    """The aiohttp application of the REST mapping over one :class:`CloudKmsService`."""

    def __init__(self, service: CloudKmsService) -> None:
        self._service = service

    def build(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        if self._service.verifier.token_audiences:
            service = self._service
            handler = gcp_token.token_handler(service.verifier, service.refusals, service.audit, service.token_failures)
            app.router.add_route("POST", gcp_token.PATH, handler)
        app.router.add_route("*", "/{tail:[\\s\\S]*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        # request.path is percent-decoded: an encoded slash (r%2FcryptoKeys%2Fk) or colon (k%3Adecrypt) would become
        # a separator, of segments or of a custom verb, and reach a resource or method a path-matching proxy or audit
        # rule never saw; no Cloud KMS id holds a slash or a colon
        raw_path = request.rel_url.raw_path.lower()
        encoded_separator = "%2f" in raw_path or "%3a" in raw_path
        verb = _verb(request)
        if not encoded_separator and (not_offered := _not_offered(verb, request.path)) is not None:
            return not_offered
        for route in ROUTES:
            match = route.path.fullmatch(request.path) if route.verb == verb else None
            if match is not None and not encoded_separator:
                break
        else:
            error = {"code": 404, "message": f"no Cloud KMS method at {verb[:16]} {request.path[:200]}",
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
        except web.RequestPayloadError:  # a gzip or deflate body that does not decode: the client's error
            request.content.feed_eof()  # aiohttp would linger reading the rest, which raises again (a traceback)
            encoding = request.headers.get("Content-Encoding", "")[:32]
            return _refused(400, f"The request body does not decode as its Content-Encoding ({encoding}).",
                            "INVALID_ARGUMENT")  # fmt: skip
        values = match.groups()
        call = GcpRequest(route.name, route.method, request.headers.get("Authorization"),
                          lambda: transcode(route, values, request.query, body), request.remote or "-")  # fmt: skip
        outcome = await self._service.rest_pipeline.handle(call)
        if outcome.http_status != 200:
            error = {"code": outcome.http_status, "message": outcome.message, "status": outcome.code.name}
            return _json_response(outcome.http_status, {"error": error})
        numeric = any(NUMERIC_ENUMS in request.query.get(key, "").split(";") for key in ALT_PARAMETERS)
        answer = json_format.MessageToDict(
            route.method.response_type.pb(outcome.answer), use_integers_for_enums=numeric
        )
        return _json_response(200, answer)
