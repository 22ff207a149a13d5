"""Request models of every operation of both wires, and hypothesis strategies that break them.

A :class:`Case` is one request on the wire with what it must earn: ``defect is None`` means a
valid request on the fixture key that must succeed; any other defect names what was broken
(signature, header bytes, body, a field's format, the path) and the request must be refused
with the wire's error code. ``Garbage`` cases (random bytes where HTTP is expected) must only
never earn a 5xx. Every operation of the v1.0 wire and of the AWS JSON 1.1 wire has a valid
body here; defects apply to all of them.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from fuzz_http import RawRequest
from hypothesis import strategies as st

from kubekms.providers import Credentials
from kubekms.wire.signing import sign_headers

REGION = "eu-central-1"
MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class Target:
    """The server under test and its fixture key (enabled, aliased, tagged ``fuzz=yes``)."""

    host: str
    port: int
    project_id: str
    access_key: str
    secret_key: str
    key_id: str
    alias: str
    ciphertext: bytes  # a 32-byte data key sealed under key_id, no aad

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"


Body = Callable[[Target], dict[str, Any]]


@dataclass(frozen=True)
class Operation:
    wire: str  # "v1" or "aws"
    name: str
    body: Body
    read_only: bool  # a valid request leaves every key as it was (fit for "valid requests succeed")
    method: str = "POST"
    path: str = ""  # v1: after /kms/, "{key}" is the fixture key id
    query: bool = False  # v1 list-aliases: the key travels in the query
    integers: tuple[str, ...] = ()  # body fields read as integers
    markers: tuple[str, ...] = ()  # body fields read as paging markers
    key_fields: tuple[str, ...] = ()  # body fields naming a key
    alias_fields: tuple[str, ...] = ()  # body fields naming a new alias


@dataclass(frozen=True)
class Case:
    operation: Operation | None
    request: RawRequest
    defect: str | None  # None: valid, must succeed
    garbage: bool = False  # not a request of either wire: only "never 5xx" applies

    @property
    def wire(self) -> str:
        return self.operation.wire if self.operation else "http"


def _dek_hex(dek: bytes) -> str:
    return (dek + hashlib.sha256(dek).digest()).hex()


def _k(t: Target) -> dict[str, Any]:
    return {"key_id": t.key_id}


V1_OPERATIONS: tuple[Operation, ...] = (
    Operation("v1", "describe-key", _k, True, path="describe-key", key_fields=("key_id",)),
    Operation("v1", "get-key-rotation-status", _k, True, path="get-key-rotation-status", key_fields=("key_id",)),
    Operation(
        "v1",
        "create-datakey",
        lambda t: {**_k(t), "datakey_length": "256"},
        True,
        path="create-datakey",
        integers=("datakey_length",),
        key_fields=("key_id",),
    ),
    Operation(
        "v1",
        "create-datakey-without-plaintext",
        lambda t: {**_k(t), "datakey_length": "128"},
        True,
        path="create-datakey-without-plaintext",
        integers=("datakey_length",),
        key_fields=("key_id",),
    ),
    Operation(
        "v1",
        "encrypt-datakey",
        lambda t: {**_k(t), "plain_text": _dek_hex(b"\x01" * 32), "datakey_plain_length": "32"},
        True,
        path="encrypt-datakey",
        integers=("datakey_plain_length",),
        key_fields=("key_id",),
    ),
    Operation(
        "v1",
        "decrypt-datakey",
        lambda t: {**_k(t), "cipher_text": t.ciphertext.hex(), "datakey_cipher_length": "32"},
        True,
        path="decrypt-datakey",
        integers=("datakey_cipher_length",),
        key_fields=("key_id",),
    ),
    Operation(
        "v1",
        "gen-random",
        lambda t: {"random_data_length": "256"},
        True,
        path="gen-random",
        integers=("random_data_length",),
    ),
    Operation(
        "v1", "list-keys", lambda t: {"limit": "50"}, True, path="list-keys", integers=("limit",), markers=("marker",)
    ),
    Operation("v1", "user-instances", lambda t: {}, True, method="GET", path="user-instances"),
    Operation("v1", "user-quotas", lambda t: {}, True, method="GET", path="user-quotas"),
    Operation("v1", "list-aliases", lambda t: {}, True, method="GET", path="aliases", query=True),
    Operation("v1", "list-key-tags", lambda t: {}, True, method="GET", path="{key}/tags"),
    Operation(
        "v1",
        "list-keys-by-tags",
        lambda t: {"action": "filter", "limit": "10", "offset": "0", "tags": [{"key": "fuzz", "values": ["yes"]}]},
        True,
        path="resource_instances/action",
        integers=("limit", "offset"),
    ),
    Operation(
        "v1", "create-key", lambda t: {"key_alias": "fuzz-new"}, False, path="create-key", alias_fields=("key_alias",)
    ),
    Operation("v1", "enable-key", _k, False, path="enable-key", key_fields=("key_id",)),
    Operation("v1", "disable-key", _k, False, path="disable-key", key_fields=("key_id",)),
    Operation(
        "v1",
        "schedule-key-deletion",
        lambda t: {**_k(t), "pending_days": "7"},
        False,
        path="schedule-key-deletion",
        integers=("pending_days",),
        key_fields=("key_id",),
    ),
    Operation("v1", "cancel-key-deletion", _k, False, path="cancel-key-deletion", key_fields=("key_id",)),
    Operation(
        "v1",
        "update-key-description",
        lambda t: {**_k(t), "key_description": "changed"},
        False,
        path="update-key-description",
        key_fields=("key_id",),
    ),
    Operation(
        "v1",
        "enable-key-rotation",
        lambda t: {**_k(t), "rotation_interval": "30"},
        False,
        path="enable-key-rotation",
        integers=("rotation_interval",),
        key_fields=("key_id",),
    ),
    Operation("v1", "disable-key-rotation", _k, False, path="disable-key-rotation", key_fields=("key_id",)),
    Operation(
        "v1",
        "update-key-rotation-interval",
        lambda t: {**_k(t), "rotation_interval": "60"},
        False,
        path="update-key-rotation-interval",
        integers=("rotation_interval",),
        key_fields=("key_id",),
    ),
    Operation("v1", "rotate-on-demand", _k, False, path="rotate-on-demand", key_fields=("key_id",)),
    Operation(
        "v1",
        "create-alias",
        lambda t: {**_k(t), "alias": "fuzz-second"},
        False,
        path="aliases",
        key_fields=("key_id",),
        alias_fields=("alias",),
    ),
    # renamed to the name it has: a valid call that changes nothing (the fixture's alias must keep naming it)
    Operation(
        "v1",
        "update-key-alias",
        lambda t: {**_k(t), "key_alias": t.alias},
        True,
        path="update-key-alias",
        key_fields=("key_id",),
        alias_fields=("key_alias",),
    ),
    Operation(
        "v1",
        "delete-alias",
        lambda t: {**_k(t), "aliases": [t.alias]},
        False,
        method="DELETE",
        path="aliases",
        key_fields=("key_id",),
    ),
    Operation("v1", "create-key-tag", lambda t: {"tag": {"key": "added", "value": "1"}}, False, path="{key}/tags"),
    Operation(
        "v1",
        "batch-key-tags",
        lambda t: {"action": "create", "tags": [{"key": "added", "value": "1"}]},
        False,
        path="{key}/tags/action",
    ),
    Operation("v1", "delete-key-tag", lambda t: {}, False, method="DELETE", path="{key}/tags/fuzz"),
    # asymmetric and HMAC operations: the fixture key refuses them, so only their defects run here
    Operation(
        "v1",
        "sign",
        lambda t: {**_k(t), "message": base64.b64encode(b"m" * 32).decode(), "signing_algorithm": "ECDSA_SHA_256"},
        False,
        path="sign",
        key_fields=("key_id",),
    ),
    Operation("v1", "get-publickey", _k, False, path="get-publickey", key_fields=("key_id",)),
    Operation(
        "v1",
        "verify-mac",
        lambda t: {**_k(t), "message": "bQ==", "mac": "bQ==", "mac_algorithm": "HMAC_SHA_256"},
        False,
        path="verify-mac",
        key_fields=("key_id",),
    ),
    Operation(
        "v1",
        "create-key-with-tags",
        lambda t: {"key_alias": "fuzz-tagged", "tags": [{"key": "k", "value": "v"}]},
        False,
        path="create-key",
        alias_fields=("key_alias",),
    ),
)


def _kid(t: Target) -> dict[str, Any]:
    return {"KeyId": t.key_id}


def _key_listing(name: str) -> Operation:
    """A read-only, paged AWS listing of the fixture key's things (rotations, tags, policies, grants)."""
    return Operation(
        "aws",
        name,
        lambda t: {**_kid(t), "Limit": 10},
        True,
        integers=("Limit",),
        markers=("Marker",),
        key_fields=("KeyId",),
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


_OPEN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}],
}


AWS_OPERATIONS: tuple[Operation, ...] = (
    Operation("aws", "DescribeKey", lambda t: {"KeyId": f"alias/{t.alias}"}, True, key_fields=("KeyId",)),
    Operation("aws", "GetKeyRotationStatus", _kid, True, key_fields=("KeyId",)),
    _key_listing("ListKeyRotations"),
    Operation(
        "aws",
        "GenerateDataKey",
        lambda t: {**_kid(t), "NumberOfBytes": 32},
        True,
        integers=("NumberOfBytes",),
        key_fields=("KeyId",),
    ),
    Operation(
        "aws",
        "GenerateDataKeyWithoutPlaintext",
        lambda t: {**_kid(t), "KeySpec": "AES_128"},
        True,
        key_fields=("KeyId",),
    ),
    Operation("aws", "Encrypt", lambda t: {**_kid(t), "Plaintext": _b64(b"secret")}, True, key_fields=("KeyId",)),
    Operation("aws", "Decrypt", lambda t: {"CiphertextBlob": _b64(t.ciphertext)}, True),
    Operation("aws", "GenerateRandom", lambda t: {"NumberOfBytes": 16}, True, integers=("NumberOfBytes",)),
    Operation("aws", "ListKeys", lambda t: {"Limit": 10}, True, integers=("Limit",), markers=("Marker",)),
    Operation("aws", "ListAliases", lambda t: {"Limit": 10}, True, integers=("Limit",), markers=("Marker",)),
    _key_listing("ListResourceTags"),
    Operation("aws", "CreateKey", lambda t: {"Description": "new"}, False),
    Operation(
        "aws", "UpdateKeyDescription", lambda t: {**_kid(t), "Description": "changed"}, False, key_fields=("KeyId",)
    ),
    Operation("aws", "EnableKey", _kid, False, key_fields=("KeyId",)),
    Operation("aws", "DisableKey", _kid, False, key_fields=("KeyId",)),
    Operation(
        "aws",
        "ScheduleKeyDeletion",
        lambda t: {**_kid(t), "PendingWindowInDays": 7},
        False,
        integers=("PendingWindowInDays",),
        key_fields=("KeyId",),
    ),
    Operation("aws", "CancelKeyDeletion", _kid, False, key_fields=("KeyId",)),
    Operation(
        "aws",
        "EnableKeyRotation",
        lambda t: {**_kid(t), "RotationPeriodInDays": 90},
        False,
        integers=("RotationPeriodInDays",),
        key_fields=("KeyId",),
    ),
    Operation("aws", "DisableKeyRotation", _kid, False, key_fields=("KeyId",)),
    Operation("aws", "RotateKeyOnDemand", _kid, False, key_fields=("KeyId",)),
    Operation(
        "aws",
        "CreateAlias",
        lambda t: {"AliasName": "alias/fuzz-aws", "TargetKeyId": t.key_id},
        False,
        key_fields=("TargetKeyId",),
        alias_fields=("AliasName",),
    ),
    Operation("aws", "DeleteAlias", lambda t: {"AliasName": f"alias/{t.alias}"}, False),
    Operation(
        "aws",
        "TagResource",
        lambda t: {**_kid(t), "Tags": [{"TagKey": "added", "TagValue": "1"}]},
        False,
        key_fields=("KeyId",),
    ),
    Operation("aws", "UntagResource", lambda t: {**_kid(t), "TagKeys": ["fuzz"]}, False, key_fields=("KeyId",)),
    # policies, grants, key pairs, re-encryption: valid on the fixture key
    Operation("aws", "GetKeyPolicy", lambda t: {**_kid(t), "PolicyName": "default"}, True, key_fields=("KeyId",)),
    _key_listing("ListKeyPolicies"),
    _key_listing("ListGrants"),
    Operation(
        "aws",
        "ListRetirableGrants",
        lambda t: {"RetiringPrincipal": f"arn:aws:iam::{t.project_id}:user/fuzzer", "Limit": 10},
        True,
        integers=("Limit",),
        markers=("Marker",),
    ),
    Operation(
        "aws",
        "GenerateDataKeyPairWithoutPlaintext",
        lambda t: {**_kid(t), "KeyPairSpec": "ECC_NIST_P256", "GrantTokens": []},
        True,
        key_fields=("KeyId",),
    ),
    Operation(
        "aws",
        "ReEncrypt",
        lambda t: {"CiphertextBlob": _b64(t.ciphertext), "DestinationKeyId": t.key_id},
        True,
        key_fields=("DestinationKeyId",),
    ),
    Operation(
        "aws",
        "PutKeyPolicy",
        lambda t: {**_kid(t), "PolicyName": "default", "Policy": json.dumps(_OPEN_POLICY)},
        False,
        key_fields=("KeyId",),
    ),
    Operation(
        "aws",
        "CreateGrant",
        lambda t: {**_kid(t), "GranteePrincipal": "arn:aws:iam::fuzz:user/g", "Operations": ["Encrypt"]},
        False,
        key_fields=("KeyId",),
    ),
    Operation("aws", "RevokeGrant", lambda t: {**_kid(t), "GrantId": "0" * 64}, False, key_fields=("KeyId",)),
    Operation("aws", "RetireGrant", lambda t: {**_kid(t), "GrantId": "0" * 64}, False, key_fields=("KeyId",)),
    Operation(
        "aws",
        "UpdateAlias",
        lambda t: {"AliasName": "alias/fuzz-aws", "TargetKeyId": t.key_id},
        False,
        key_fields=("TargetKeyId",),
    ),
    # asymmetric, HMAC and import operations: the fixture key refuses them, so only their defects run here
    Operation(
        "aws",
        "Sign",
        lambda t: {**_kid(t), "Message": _b64(b"m"), "MessageType": "RAW", "SigningAlgorithm": "ECDSA_SHA_256"},
        False,
        key_fields=("KeyId",),
    ),
    Operation("aws", "GetPublicKey", _kid, False, key_fields=("KeyId",)),
    Operation(
        "aws",
        "GenerateMac",
        lambda t: {**_kid(t), "Message": _b64(b"m"), "MacAlgorithm": "HMAC_SHA_256"},
        False,
        key_fields=("KeyId",),
    ),
    Operation(
        "aws",
        "GetParametersForImport",
        lambda t: {**_kid(t), "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_2048"},
        False,
        key_fields=("KeyId",),
    ),
    Operation(
        "aws",
        "ImportKeyMaterial",
        lambda t: {**_kid(t), "ImportToken": _b64(b"t" * 64), "EncryptedKeyMaterial": _b64(b"e" * 256)},
        False,
        key_fields=("KeyId",),
    ),
)

OPERATIONS = V1_OPERATIONS + AWS_OPERATIONS
READ_ONLY = tuple(op for op in OPERATIONS if op.read_only)


# ---------------------------------------------------------------------------- signing and encoding


@dataclass(frozen=True)
class Envelope:
    """How to wrap a body: the knobs the envelope defects turn."""

    project_id: str | None = None  # v1 path segment (raw, already percent-encoded)
    path: str | None = None  # v1 tail after /kms/ (raw)
    method: str | None = None
    target_header: str | None = None  # AWS X-Amz-Target
    secret_key: str | None = None
    access_key: str | None = None
    signed_at: datetime | None = None
    extra_signed: tuple[tuple[str, str], ...] = ()  # (name, value) signed as str, sent as UTF-8
    raw_after_signing: tuple[tuple[bytes, bytes | None], ...] = ()  # header bytes replaced after signing (None: drop)
    declared_length: int | None = None


def encode(op: Operation, target: Target, body: bytes, env: Envelope = Envelope()) -> RawRequest:
    if op.wire == "v1":
        return _encode_v1(op, target, body, env)
    return _encode_aws(op, target, body, env)


def _encode_v1(op: Operation, target: Target, body: bytes, env: Envelope) -> RawRequest:
    project = env.project_id if env.project_id is not None else target.project_id
    tail = env.path if env.path is not None else op.path.replace("{key}", target.key_id)
    path = f"/v1.0/{project}/kms/{tail}"
    if op.query:
        path += f"?key_id={target.key_id}"
    method = env.method or op.method
    headers = {"Content-Type": "application/json", **dict(env.extra_signed)}
    credentials = Credentials(env.access_key or target.access_key, env.secret_key or target.secret_key)
    signed = sign_headers(method, f"http://{target.authority}{path}", headers, body, credentials, now=env.signed_at)
    return _finish(method, path, signed, body, env)


def _encode_aws(op: Operation, target: Target, body: bytes, env: Envelope) -> RawRequest:
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": env.target_header if env.target_header is not None else f"TrentService.{op.name}",
        **dict(env.extra_signed),
    }
    request = AWSRequest(method=env.method or "POST", url=f"http://{target.authority}/", data=body, headers=headers)
    credentials = BotoCredentials(env.access_key or target.access_key, env.secret_key or target.secret_key)
    signer = SigV4Auth(credentials, "kms", REGION)
    # add_auth's steps with a date of our choosing (add_auth always signs "now")
    request.context["timestamp"] = (env.signed_at or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    signer._modify_request_before_signing(request)
    signature = signer.signature(signer.string_to_sign(request, signer.canonical_request(request)), request)
    signer._inject_signature_to_request(request, signature)
    signed = {"Host": target.authority, **dict(request.headers.items())}
    return _finish(env.method or "POST", "/", signed, body, env)


def _finish(method: str, path: str, signed: dict[str, str], body: bytes, env: Envelope) -> RawRequest:
    headers = {name.encode(): str(value).encode("utf-8", "surrogateescape") for name, value in signed.items()}
    for name, value in env.raw_after_signing:
        if value is None:
            headers.pop(name, None)
        else:
            headers[name] = value
    return RawRequest(method, path.encode(), tuple(headers.items()), body, env.declared_length)


def json_bytes(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()  # ensure_ascii: a lone surrogate travels as its \\udxxx escape


# ---------------------------------------------------------------------------- strategies


UNICODE_EDGE_TEXT = st.sampled_from(
    ["é", "ß", "日本語", "👩‍💻", "\u200b", "\u202e", "\ufeff", "\x00", "Ω" * 40, "a\tb", "\u0301", "ǅ", "\U0010fffd"]
)
BENIGN_TEXT = st.one_of(st.text(max_size=40), UNICODE_EDGE_TEXT)  # st.text never draws lone surrogates
BENIGN_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | BENIGN_TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(BENIGN_TEXT, children, max_size=3),
    max_leaves=8,
)


@st.composite
def valid_case(draw: st.DrawFn, target: Target) -> Case:
    """A read-only request on the fixture key, with unknown extra fields and Unicode where the wire allows it."""
    op = draw(st.sampled_from(READ_ONLY))
    body = op.body(target)
    extras = draw(st.dictionaries(st.text(min_size=1, max_size=12).map(lambda s: "x-" + s), BENIGN_JSON, max_size=3))
    body.update(extras)
    if op.name in ("create-datakey", "create-datakey-without-plaintext") and draw(st.booleans()):
        body["additional_authenticated_data"] = draw(BENIGN_TEXT.filter(lambda s: 0 < len(s.encode()) <= 128))
    if op.name == "GenerateDataKey" and draw(st.booleans()):
        # keys not empty: AWS refuses an empty encryption-context key (ValidationException), as the server does
        body["EncryptionContext"] = draw(st.dictionaries(BENIGN_TEXT.filter(bool), BENIGN_TEXT, max_size=3))
    return Case(op, encode(op, target, json_bytes(body)), None)


NON_ASCII_INTEGERS = [
    "²",
    "³²",
    "٣٢",
    "३२",
    "\u0661\u0660",
    "\U0001d7d5",
    "--7",
    "+7",
    "1_0",
    "0x10",
    "7.0",
    " 7",
    "7\n",
    "1e3",
    "Ⅻ",
]
AWS_BAD_INTEGERS: list[Any] = ["32", "²", True, 7.5, [7], {"n": 7}, 2**64, -(2**64)]
V1_BAD_INTEGERS: list[Any] = [*NON_ASCII_INTEGERS, True, False, 7.5, [7], {"n": 7}, 2**64, "18446744073709551616"]
BAD_MARKERS: list[Any] = ["²", "--7", "-1", "abc", "٣", "1" * 25, "18446744073709551616", 2**64, True, 1.5]
BAD_KEY_REFS: list[Any] = [7, True, ["x"], {"a": "b"}, "k" * 3000]
BAD_ALIASES = ["fuzz-x\n", "fuzz x", "a/default", "ä", "x" * 300, "\n", "fuzz\x00"]


@st.composite
def field_defect(draw: st.DrawFn, target: Target) -> Case:
    """One field of one operation given a value of the wrong format (non-ASCII digits, beyond 64 bits...)."""
    candidates = [op for op in OPERATIONS if op.integers or op.markers or op.key_fields or op.alias_fields]
    op = draw(st.sampled_from(candidates))
    body = op.body(target)
    kinds = [
        k
        for k, fields in (
            ("integer", op.integers),
            ("marker", op.markers),
            ("key", op.key_fields),
            ("alias", op.alias_fields),
        )
        if fields
    ]
    kind = draw(st.sampled_from(kinds))
    if kind == "integer":
        name = draw(st.sampled_from(op.integers))
        body[name] = draw(st.sampled_from(V1_BAD_INTEGERS if op.wire == "v1" else AWS_BAD_INTEGERS))
    elif kind == "marker":
        name = draw(st.sampled_from(op.markers))
        body[name] = draw(st.sampled_from(BAD_MARKERS))
    elif kind == "key":
        name = draw(st.sampled_from(op.key_fields))
        body[name] = draw(st.sampled_from(BAD_KEY_REFS))
    else:
        name = draw(st.sampled_from(op.alias_fields))
        alias = draw(st.sampled_from(BAD_ALIASES))
        body[name] = f"alias/{alias}" if op.wire == "aws" else alias
    return Case(op, encode(op, target, json_bytes(body)), f"{kind}:{name}")


@st.composite
def body_defect(draw: st.DrawFn, target: Target) -> Case:
    """The whole body broken: lone surrogates, nesting, huge integers, bytes that are not JSON, oversize."""
    op = draw(st.sampled_from(OPERATIONS))
    body = op.body(target)
    kind = draw(st.sampled_from(["surrogate", "deep", "bigint", "not-json", "oversize", "declared-oversize"]))
    if kind == "surrogate":
        surrogate = chr(draw(st.integers(0xD800, 0xDFFF)))
        text_fields = [name for name, value in body.items() if isinstance(value, str)]
        where = draw(st.sampled_from([*text_fields, "x-extra", "name"]))
        if where == "name":
            body["x" + surrogate] = "v"
        else:
            body[where] = draw(st.sampled_from(["", "key-", "alias/"])) + surrogate
        raw = json_bytes(body)
    elif kind == "deep":
        depth = draw(st.integers(9, 20_000))
        raw = json_bytes(body)[:-1] + b', "x-deep": ' + b"[" * depth + b"]" * depth + b"}"
    elif kind == "bigint":
        digits = draw(st.integers(21, 20_000))
        raw = json_bytes(body)[:-1] + b', "x-big": ' + b"9" * digits + b"}"
    elif kind == "not-json":
        raw = draw(
            st.sampled_from(
                [
                    b"{",
                    b"[1,2]",
                    b'"text"',
                    b"\xff\xfe{}",
                    b'{"a": NaN}',
                    b'{"a": Infinity}',
                    b"{'a': 1}",
                    json_bytes(body)[:-1],
                    json_bytes(body).decode().encode("utf-16"),
                    b"{}garbage",
                    b'{"key_id": "\\ud800\\udc00\\ud800"}',
                    b'{"a":1,}',
                ]
            )
        )
    elif kind == "oversize":
        raw = json_bytes({**body, "x-pad": "p" * (MAX_BODY + draw(st.integers(1, 4096)))})
    else:
        request = encode(op, target, json_bytes(body), Envelope(declared_length=draw(st.integers(MAX_BODY + 1, 2**40))))
        return Case(op, request, "body:declared-oversize")
    return Case(op, encode(op, target, raw), f"body:{kind}")


@st.composite
def envelope_defect(draw: st.DrawFn, target: Target) -> Case:
    """Signature, headers, path or method broken around a valid body."""
    op = draw(st.sampled_from(OPERATIONS))
    body = json_bytes(op.body(target))
    auth = b"Authorization"
    kinds = [
        "bad-signature",
        "wrong-secret",
        "unknown-access-key",
        "stale-date",
        "no-authorization",
        "garbage-authorization",
        "non-ascii-signature",
        "non-utf8-signature",
        "non-ascii-signed-header",
        "non-utf8-signed-header",
        "tampered-body",
    ]
    kinds += (
        ["bad-project", "unknown-path", "wrong-method"]
        if op.wire == "v1"
        else ["bad-host", "session-token", "unknown-target"]
    )
    kind = draw(st.sampled_from(kinds))
    env = Envelope()
    if kind == "wrong-secret":
        env = Envelope(secret_key="not-the-secret-" + draw(st.text("abcdef0123456789", min_size=1, max_size=20)))
    elif kind == "unknown-access-key":
        env = Envelope(access_key="AK" + draw(st.text("ABCDEF0123456789", min_size=4, max_size=20)))
    elif kind == "stale-date":
        env = Envelope(signed_at=datetime.now(UTC) + timedelta(minutes=draw(st.sampled_from([-60, -16, 16, 600]))))
    elif kind == "non-ascii-signed-header":
        env = Envelope(extra_signed=(("X-Fuzz", draw(UNICODE_EDGE_TEXT.filter(lambda s: not s.isascii()))),))
    elif kind == "non-utf8-signed-header":
        env = Envelope(extra_signed=(("X-Fuzz", "ok"),), raw_after_signing=((b"X-Fuzz", b"\xff\xfe\x80"),))
    elif kind == "bad-project":
        project = draw(
            st.sampled_from(
                [
                    f"{target.project_id}%0A",
                    "%0A",
                    "..",
                    "a" * 65,
                    "pr%C3%B3j",
                    "p.q",
                    f"{target.project_id}%00",
                    "%ED%A0%80",
                    "a%2Fb",
                ]
            )
        )
        env = Envelope(project_id=project)
    elif kind == "unknown-path":
        env = Envelope(
            path=draw(
                st.sampled_from(
                    [
                        "describe-keyy",
                        "",
                        "x/y/z/w",
                        "%0A",
                        "tagz",  # not "tags": GET .../kms/tags is list_kms_tags (the project's tags)
                        "/describe-key",
                        "describe-key%00",
                        "%ED%A0%80/tags/x/y",
                    ]
                )
            )
        )
    elif kind == "wrong-method":
        env = Envelope(
            method=draw(st.sampled_from(["PUT", "PATCH", "OPTIONS"]))
        )  # GET/POST/DELETE route other operations
    elif kind == "session-token":
        env = Envelope(extra_signed=(("X-Amz-Security-Token", "token"),))
    elif kind == "unknown-target":
        env = Envelope(
            target_header=draw(
                st.sampled_from(["TrentService.Nope", "", "Trent", "TrentService.", "TrentService.describekey"])
            )
        )
    request = encode(op, target, body, env)
    headers = dict(request.headers)
    if kind == "bad-signature":
        value = headers[auth]
        headers[auth] = value[:-1] + (b"0" if value[-1:] != b"0" else b"1")
    elif kind == "no-authorization":
        headers.pop(auth)
    elif kind == "garbage-authorization":
        headers[auth] = draw(st.binary(min_size=1, max_size=200).filter(_header_bytes))
    elif kind == "non-ascii-signature":
        headers[auth] = headers[auth][:-4] + "üñï".encode()
    elif kind == "non-utf8-signature":
        headers[auth] = headers[auth][:-4] + b"\xff\xfe\xc3"
    elif kind == "tampered-body":
        request = replace(request, body=body[:-1] + b', "x-tampered": 1}')
    elif kind == "bad-host":
        headers[b"Host"] = draw(
            st.sampled_from([b"[", b"[::1", b"h:p:q", "hôst".encode(), b"a b", b"host:99999x", b"\xff", b""])
        )
    return Case(op, replace(request, headers=tuple(headers.items())), f"envelope:{kind}")


def _header_bytes(data: bytes) -> bool:
    """Bytes HTTP allows in a header value (no control bytes: those are the HTTP parser's to refuse)."""
    return all(c >= 0x20 and c != 0x7F for c in data)


def _no_space_or_newline(data: bytes) -> bool:
    return not any(c in data for c in b" \r\n")


@st.composite
def garbage_case(draw: st.DrawFn, target: Target) -> Case:
    """Bytes where HTTP is expected: control bytes in the target, broken header lines, odd methods."""
    method = draw(st.sampled_from(["GET", "POST", "DELETE", "PUT", "OPTIONS", "HEAD", "BREW", "G\x01T"]))
    target_bytes = draw(
        st.one_of(
            st.sampled_from(
                [
                    b"/",
                    b"/healthz",
                    b"/v1.0/",
                    b"/v1.0/x/kms/",
                    b"*",
                    b"http://x/",
                    b"/%",
                    b"/%ZZ",
                    b"/\xff\xfe",
                    "/ü".encode(),
                    b"/a\x00b",
                    b"/" + b"a" * 9000,
                ]
            ),
            st.binary(min_size=1, max_size=60)
            .filter(lambda b: not any(c in b for c in b" \r\n"))
            .map(lambda b: b"/" + b),
        )
    )
    headers = draw(
        st.lists(
            st.tuples(
                st.sampled_from([b"Host", b"X-Amz-Target", b"Authorization", b"X-Sdk-Date", b"X-Odd", b"Content-Type"]),
                st.binary(max_size=80).filter(lambda b: b"\r" not in b and b"\n" not in b),
            ),
            max_size=5,
        )
    )
    body = draw(st.binary(max_size=200))
    return Case(None, RawRequest(method, target_bytes, tuple(headers), body), "garbage", garbage=True)


Branch = Callable[[Target], st.SearchStrategy[Case]]
HOSTILE: tuple[Branch, ...] = (field_defect, field_defect, body_defect, body_defect, envelope_defect,
                               envelope_defect, envelope_defect, garbage_case)  # fmt: skip
MIX: tuple[Branch, ...] = (valid_case, valid_case, valid_case, *HOSTILE)


@st.composite
def _mixed(draw: st.DrawFn, target: Target, branches: tuple[Branch, ...]) -> Case:
    # A nonce first: hypothesis never repeats an example, so without one the small branches run dry
    # after a few draws and nearly every example comes from the widest branch (random bytes).
    draw(st.integers(0, 2**63))
    return draw(draw(st.sampled_from(branches))(target))


def hostile_case(target: Target) -> st.SearchStrategy[Case]:
    """Field, body and envelope defects (refused with the wire's code), and HTTP garbage."""
    return _mixed(target, HOSTILE)


def any_case(target: Target) -> st.SearchStrategy[Case]:
    """About one valid request in four, the rest hostile."""
    return _mixed(target, MIX)
