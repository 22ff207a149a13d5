"""The plugin over a real Unix socket with a real gRPC client, against a real kubekms server."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from plugin_support import stub

from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.plugin import PluginProcess
from kubekms.devenv.processes import wait_for
from kubekms.plugin_ciphertext import KEK_ANNOTATION, key_id_hash
from kubekms_plugin.v2 import api_pb2

SEED = bytes(range(32))


def encrypt(plugin: PluginProcess, plaintext: bytes = SEED) -> api_pb2.EncryptResponse:
    return stub(plugin).Encrypt(api_pb2.EncryptRequest(plaintext=plaintext, uid="test"), timeout=10)


def decrypt(plugin: PluginProcess, response: api_pb2.EncryptResponse, **changes: Any) -> bytes:
    request = {
        "ciphertext": response.ciphertext,
        "key_id": response.key_id,
        "annotations": dict(response.annotations),
        "uid": "test",
    } | changes
    return stub(plugin).Decrypt(api_pb2.DecryptRequest(**request), timeout=10).plaintext


def status(plugin: PluginProcess) -> api_pb2.StatusResponse:
    return stub(plugin).Status(api_pb2.StatusRequest(), timeout=5)


def key_id_of(server: KMSServer, alias: str) -> str:
    return str(server.call("describe_key", alias).key_id)  # type: ignore[attr-defined]


def test_round_trip_status_and_socket_mode(
    server: KMSServer, key_alias: str, make_plugin: Callable[..., PluginProcess]
) -> None:
    plugin = make_plugin(key_alias)
    key_id = key_id_of(server, key_alias)
    assert stat.S_IMODE(os.stat(plugin.socket).st_mode) == 0o600
    answer = status(plugin)
    assert (answer.version, answer.healthz, answer.key_id) == ("v2", "ok", f"{key_id}:v1")
    sealed = encrypt(plugin)
    assert sealed.key_id == answer.key_id
    assert 0 < len(sealed.ciphertext) <= 1024
    assert set(sealed.annotations) == {KEK_ANNOTATION}
    assert SEED not in sealed.ciphertext
    assert decrypt(plugin, sealed) == SEED
    assert encrypt(plugin).ciphertext != sealed.ciphertext  # fresh nonce every time


def test_rotation_reaches_status_and_old_data_still_decrypts(
    server: KMSServer, key_alias: str, make_plugin: Callable[..., PluginProcess]
) -> None:
    plugin = make_plugin(key_alias)
    key_id = key_id_of(server, key_alias)
    before = encrypt(plugin)
    server.call("rotate_key", key_alias)
    wait_for(lambda: status(plugin).key_id == f"{key_id}:v2", 15, "the new key_id in Status")
    after = encrypt(plugin)
    assert after.key_id == f"{key_id}:v2"
    assert after.annotations[KEK_ANNOTATION] != before.annotations[KEK_ANNOTATION]
    assert decrypt(plugin, before) == SEED
    assert decrypt(plugin, after) == SEED
    with pytest.raises(grpc.RpcError) as refused:  # the key_id is bound to the ciphertext
        decrypt(plugin, before, key_id=after.key_id)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1 :]


BAD_DECRYPTS: dict[str, tuple[Callable[[api_pb2.EncryptResponse], dict[str, Any]], grpc.StatusCode, str]] = {
    "empty ciphertext": (lambda r: {"ciphertext": b""}, grpc.StatusCode.INVALID_ARGUMENT, "ciphertext must be"),
    "oversized ciphertext": (lambda r: {"ciphertext": b"\x01" * 1025}, grpc.StatusCode.INVALID_ARGUMENT, "1024"),
    "truncated ciphertext": (lambda r: {"ciphertext": r.ciphertext[:20]}, grpc.StatusCode.INVALID_ARGUMENT, "format"),
    "tampered ciphertext": (
        lambda r: {"ciphertext": _flip(r.ciphertext, 30)},
        grpc.StatusCode.INVALID_ARGUMENT,
        "authentication",
    ),
    "unknown format": (lambda r: {"ciphertext": _flip(r.ciphertext, 0)}, grpc.StatusCode.INVALID_ARGUMENT, "format"),
    "missing annotation": (lambda r: {"annotations": {}}, grpc.StatusCode.INVALID_ARGUMENT, "missing"),
    "unknown annotation": (
        lambda r: {"annotations": {**r.annotations, "other.example.com": b"x"}},
        grpc.StatusCode.INVALID_ARGUMENT,
        "unknown annotation",
    ),
    "oversized annotations": (
        lambda r: {"annotations": {KEK_ANNOTATION: b"x" * 33000}},
        grpc.StatusCode.INVALID_ARGUMENT,
        "32 KiB",
    ),
    "tampered KEK": (
        lambda r: {"annotations": {KEK_ANNOTATION: _flip(r.annotations[KEK_ANNOTATION], 60)}},
        grpc.StatusCode.INVALID_ARGUMENT,
        "is not a KEK wrapped by this key",
    ),
    "foreign key_id": (
        lambda r: {"key_id": "0f8fad5b-d9cb-469f-a165-70867728950e:v1"},
        grpc.StatusCode.FAILED_PRECONDITION,
        "not issued",
    ),
    "key_id without version": (
        lambda r: {"key_id": r.key_id.split(":")[0]},
        grpc.StatusCode.FAILED_PRECONDITION,
        "not issued",
    ),
    "future version": (
        lambda r: {"key_id": r.key_id.split(":")[0] + ":v9"},
        grpc.StatusCode.FAILED_PRECONDITION,
        "latest version",
    ),
    "oversized key_id": (lambda r: {"key_id": "k" * 1025}, grpc.StatusCode.INVALID_ARGUMENT, "key_id must be"),
}


def test_bad_input_gets_precise_errors_and_the_plugin_survives(
    key_alias: str, make_plugin: Callable[..., PluginProcess]
) -> None:
    plugin = make_plugin(key_alias)
    good = encrypt(plugin)
    for name, (change, code, words) in BAD_DECRYPTS.items():
        with pytest.raises(grpc.RpcError) as refused:
            decrypt(plugin, good, **change(good))
        assert refused.value.code() == code, name
        assert words in (refused.value.details() or ""), (name, refused.value.details())
    for plaintext in (b"", b"x" * 513):
        with pytest.raises(grpc.RpcError) as refused:
            encrypt(plugin, plaintext)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as refused:  # beyond the gRPC message cap
        stub(plugin).Encrypt(api_pb2.EncryptRequest(plaintext=b"x" * 100_000), timeout=10)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert plugin.running
    assert decrypt(plugin, good) == SEED


def test_backend_outage_keeps_cached_keks_working(
    server: KMSServer, key_alias: str, make_plugin: Callable[..., PluginProcess]
) -> None:
    plugin = make_plugin(key_alias)
    before = encrypt(plugin)
    server.stop()
    try:
        during = encrypt(plugin)  # the current KEK is in memory
        assert decrypt(plugin, before) == SEED
        assert decrypt(plugin, during) == SEED
        assert status(plugin).healthz == "ok"

        plugin.stop()  # a cold cache cannot reach the backend
        plugin.start(wait_healthy=False)
        unhealthy = wait_for(
            lambda: "backend kubekms" in (s := status(plugin)).healthz and s, 30, "Status naming the backend"
        )
        assert unhealthy.healthz.startswith("no usable KEK")
        with pytest.raises(grpc.RpcError) as refused:
            decrypt(plugin, before)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "backend kubekms" in (refused.value.details() or "")
    finally:
        server.start()
    wait_for(lambda: status(plugin).healthz == "ok", 15, "health after the backend is back")
    assert decrypt(plugin, before) == SEED
    assert decrypt(plugin, during) == SEED


def test_restart_with_cold_cache_decrypts_through_the_backend(
    key_alias: str, make_plugin: Callable[..., PluginProcess]
) -> None:
    plugin = make_plugin(key_alias)
    sealed = encrypt(plugin)
    plugin.stop()
    assert not plugin.socket.exists()  # SIGTERM: drained, socket removed
    assert plugin.returncode == 0
    plugin.start()
    assert decrypt(plugin, sealed) == SEED
    with urllib.request.urlopen(f"{plugin.health_url}/metrics", timeout=5) as answer:
        metrics = answer.read().decode()
    assert 'kubekms_plugin_kek_cache_total{result="miss"} 1.0' in metrics
    assert 'kubekms_plugin_calls_total{code="OK",method="Decrypt"} 1.0' in metrics
    assert key_id_hash(status(plugin).key_id) in metrics
    assert status(plugin).key_id not in metrics


def test_a_live_socket_is_refused_and_a_stale_one_replaced(
    key_alias: str, make_plugin: Callable[..., PluginProcess]
) -> None:
    first = make_plugin(key_alias)
    second = make_plugin(key_alias, name="second", start=False)
    second.socket = first.socket
    argv = [
        sys.executable,
        "-m",
        "kubekms.cli.main",
        "plugin",
        "--config",
        str(second.config_path),
        "--socket",
        str(first.socket),
    ]
    refused = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2
    assert "served by a running process" in refused.stderr
    assert decrypt(first, encrypt(first)) == SEED  # the live plugin is untouched

    first.kill()  # leaves a stale socket file behind
    assert first.socket.exists()
    first.start()
    assert decrypt(first, encrypt(first)) == SEED


def test_no_key_material_in_the_log(key_alias: str, make_plugin: Callable[..., PluginProcess]) -> None:
    plugin = make_plugin(key_alias)
    sealed = encrypt(plugin)
    with pytest.raises(grpc.RpcError):
        decrypt(plugin, sealed, ciphertext=_flip(sealed.ciphertext, 30))
    plugin.stop()
    log = plugin.log.read_bytes()
    assert b"call refused" in log
    for secret in (SEED, SEED.hex().encode(), sealed.annotations[KEK_ANNOTATION].hex().encode()):
        assert secret not in log


def test_a_key_outside_the_principal_is_refused(make_plugin: Callable[..., PluginProcess], server: KMSServer) -> None:
    server.call("create_key", "not-for-the-plugin")
    plugin = make_plugin("not-for-the-plugin", start=False)
    plugin.start(wait_healthy=False)
    reason = wait_for(lambda: "refused" in (s := status(plugin)).healthz and s.healthz, 10, "a refusal in Status")
    assert "describe-key" in reason
    with pytest.raises(grpc.RpcError) as refused:
        encrypt(plugin)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_encrypt_keeps_the_announced_key_id_until_status_reports_the_new_one(
    server: KMSServer, key_alias: str, make_plugin: Callable[..., PluginProcess]
) -> None:
    """kube-apiserver drops an Encrypt whose key_id is not the last one Status gave it."""
    plugin = make_plugin(key_alias)
    key_id = key_id_of(server, key_alias)
    assert status(plugin).key_id == f"{key_id}:v1"
    server.call("rotate_key", key_alias)
    wait_for(lambda: plugin.status()["key_id"] == f"{key_id}:v2", 15, "the plugin to hold a v2 KEK")
    assert encrypt(plugin).key_id == f"{key_id}:v1"  # the apiserver has not polled Status yet
    assert status(plugin).key_id == f"{key_id}:v2"
    sealed = encrypt(plugin)
    assert sealed.key_id == f"{key_id}:v2"
    assert decrypt(plugin, sealed) == SEED
