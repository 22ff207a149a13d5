"""Hostile calls to the plugin's three RPCs over its real Unix socket, against a real kubekms server.

Hypothesis generates Encrypt and Decrypt requests (unicode and oversized uids and key_ids,
empty and oversized ciphertexts, bit flips of a valid ciphertext, wrong or huge annotation
maps) and raw bytes that are no protobuf at all. Properties: every refusal is a precise
status (never UNKNOWN or INTERNAL), the plugin stays healthy and a valid round trip still
works, and its log holds neither a traceback nor key material. Fixed seed, ~1,500 calls.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.plugin import PluginProcess
from kubekms.plugin_ciphertext import KEK_AAD, KEK_ANNOTATION
from kubekms_plugin.service import MAX_PLAINTEXT
from kubekms_plugin.v2 import api_pb2, api_pb2_grpc

REFUSALS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.RESOURCE_EXHAUSTED,  # over gRPC's message size limit
}
METHODS = ("Status", "Encrypt", "Decrypt")
TIMEOUT = 10.0

# Valid UTF-8 only: protobuf's client refuses to serialise lone surrogates into a string field
# (raw bytes below cover what a client that skips that check could send).
texts = st.one_of(
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=40),
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=900, max_size=1100),
    st.sampled_from(["", "\x00", "\n", "é" * 600, "\U0001f511" * 300, "a" * 70_000]),
)


@dataclass(frozen=True)
class Sealed:
    plaintext: bytes
    ciphertext: bytes
    key_id: str
    wrapped: bytes


def flip_bit(data: bytes, position: int) -> bytes:
    index = position % (len(data) * 8)
    return data[: index // 8] + bytes([data[index // 8] ^ (1 << index % 8)]) + data[index // 8 + 1 :]


def hostile_bytes(valid: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.just(valid),
        st.integers(min_value=0).map(lambda position: flip_bit(valid, position)),
        st.integers(min_value=0, max_value=len(valid) - 1).map(lambda cut: valid[:cut]),
        st.binary(max_size=64).map(lambda tail: valid + tail),
        st.binary(max_size=2048),
        st.sampled_from([b"", b"\x01", bytes(1025), b"\x01" + bytes(40), b"\xff" * 70_000]),
    )


def hostile_key_ids(valid: str) -> st.SearchStrategy[str]:
    key = valid.rsplit(":v", 1)[0]
    return st.one_of(
        st.just(valid),
        texts,
        st.sampled_from(
            [
                valid + "\n",
                valid + " ",
                " " + valid,
                key + ":v2",
                key + ":v0",
                key + ":v01",
                key + ":v99999999999",
                key + ":v\u0661",  # ARABIC-INDIC DIGIT ONE
                key + ":v\u00b9",  # SUPERSCRIPT ONE
                "other:v1",
                key,
                valid.upper(),
                "kubekms-uninitialised",
            ]
        ),
    )


def hostile_annotations(wrapped: bytes) -> st.SearchStrategy[dict[str, bytes]]:
    return st.one_of(
        st.just({KEK_ANNOTATION: wrapped}),
        st.just({}),
        hostile_bytes(wrapped).map(lambda value: {KEK_ANNOTATION: value}),
        st.dictionaries(texts, st.binary(max_size=64), max_size=5),
        st.dictionaries(st.text(min_size=1, max_size=8), st.binary(max_size=8), min_size=1, max_size=3).map(
            lambda extra: {KEK_ANNOTATION: wrapped, **extra}
        ),
        st.integers(min_value=100, max_value=3000).map(
            lambda count: {KEK_ANNOTATION: wrapped} | {f"a{index}.kubekms.io": b"x" * 16 for index in range(count)}
        ),
    )


def refused_or_ok(call: Callable[[], object]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as error:
        code: grpc.StatusCode = error.code()  # type: ignore[attr-defined]
        assert code in REFUSALS, f"{code.name}: {error.details()}"  # type: ignore[attr-defined]
        return code
    return grpc.StatusCode.OK


def test_hostile_calls_get_precise_refusals_and_leave_the_plugin_healthy(
    server: KMSServer, key_alias: str, make_plugin: Callable[..., PluginProcess]
) -> None:
    plugin = make_plugin(key_alias)
    channel = grpc.insecure_channel(plugin.endpoint)
    client = api_pb2_grpc.KeyManagementServiceStub(channel)
    raw = {method: channel.unary_unary(f"/v2.KeyManagementService/{method}") for method in METHODS}
    seen_plaintexts: list[bytes] = []

    def seal(plaintext: bytes) -> Sealed:
        answer = client.Encrypt(api_pb2.EncryptRequest(plaintext=plaintext, uid="fuzz"), timeout=TIMEOUT)
        seen_plaintexts.append(plaintext)
        return Sealed(plaintext, answer.ciphertext, answer.key_id, answer.annotations[KEK_ANNOTATION])

    def still_serving(valid: Sealed) -> None:
        answer = client.Status(api_pb2.StatusRequest(), timeout=TIMEOUT)
        assert (answer.healthz, answer.key_id) == ("ok", valid.key_id)
        request = api_pb2.DecryptRequest(
            ciphertext=valid.ciphertext, key_id=valid.key_id, uid="check", annotations={KEK_ANNOTATION: valid.wrapped}
        )
        assert client.Decrypt(request, timeout=TIMEOUT).plaintext == valid.plaintext

    valid = seal(bytes(range(32)))
    codes: dict[str, int] = {}

    def count(kind: str, code: grpc.StatusCode) -> None:
        codes[f"{kind} {code.name}"] = codes.get(f"{kind} {code.name}", 0) + 1

    fuzz = settings(
        max_examples=500, deadline=None, database=None, suppress_health_check=list(HealthCheck), print_blob=True
    )

    @seed(20261130)
    @fuzz
    @given(
        ciphertext=hostile_bytes(valid.ciphertext),
        key_id=hostile_key_ids(valid.key_id),
        annotations=hostile_annotations(valid.wrapped),
        uid=texts,
    )
    def decrypt(ciphertext: bytes, key_id: str, annotations: dict[str, bytes], uid: str) -> None:
        request = api_pb2.DecryptRequest(ciphertext=ciphertext, key_id=key_id, uid=uid, annotations=annotations)
        genuine = (ciphertext, key_id, annotations) == (valid.ciphertext, valid.key_id, {KEK_ANNOTATION: valid.wrapped})
        answer: list[bytes] = []
        code = refused_or_ok(lambda: answer.append(client.Decrypt(request, timeout=TIMEOUT).plaintext))
        count("Decrypt", code)
        fits = request.ByteSize() < 64 * 1024
        if genuine and fits:
            assert answer == [valid.plaintext]
        else:
            assert code is not grpc.StatusCode.OK, "a tampered request was decrypted"
        wrapped = annotations.get(KEK_ANNOTATION)
        other_kek = fits and bool(wrapped) and wrapped != valid.wrapped and len(annotations) == 1
        if other_kek and (ciphertext, key_id) == (valid.ciphertext, valid.key_id):
            assert code is grpc.StatusCode.INVALID_ARGUMENT  # the caller's error, not a backend failure
        still_serving(valid)

    @seed(20261130)
    @fuzz
    @given(plaintext=st.one_of(st.binary(max_size=600), st.binary(min_size=MAX_PLAINTEXT, max_size=MAX_PLAINTEXT)),
           uid=texts)  # fmt: skip
    def encrypt(plaintext: bytes, uid: str) -> None:
        request = api_pb2.EncryptRequest(plaintext=plaintext, uid=uid)
        answers: list[api_pb2.EncryptResponse] = []
        code = refused_or_ok(lambda: answers.append(client.Encrypt(request, timeout=TIMEOUT)))
        count("Encrypt", code)
        if request.ByteSize() >= 64 * 1024:
            assert code is grpc.StatusCode.RESOURCE_EXHAUSTED
        elif 1 <= len(plaintext) <= MAX_PLAINTEXT:
            assert code is grpc.StatusCode.OK
            seen_plaintexts.append(plaintext)
            sealed = answers[0]
            back = client.Decrypt(
                api_pb2.DecryptRequest(
                    ciphertext=sealed.ciphertext, key_id=sealed.key_id, annotations=dict(sealed.annotations)
                ),
                timeout=TIMEOUT,
            )
            assert back.plaintext == plaintext
        else:
            assert code is grpc.StatusCode.INVALID_ARGUMENT

    @seed(20261130)
    @fuzz
    @given(method=st.sampled_from(METHODS), body=st.one_of(st.binary(max_size=300), hostile_bytes(valid.ciphertext)))
    def not_protobuf(method: str, body: bytes) -> None:
        count(f"raw {method}", refused_or_ok(lambda: raw[method](body, timeout=TIMEOUT)))
        still_serving(valid)

    decrypt()
    encrypt()
    not_protobuf()
    print("status codes by call:", dict(sorted(codes.items())))

    assert plugin.running
    still_serving(valid)
    log = plugin.log.read_text()
    assert "Traceback" not in log
    kek = server.call("decrypt_data_key", valid.key_id.rsplit(":v", 1)[0], valid.wrapped, aad=KEK_AAD)
    for secret in [kek, *seen_plaintexts[:50]]:
        if len(secret) >= 8:
            for form in (secret.hex(), base64.b64encode(secret).decode()):
                assert form not in log
