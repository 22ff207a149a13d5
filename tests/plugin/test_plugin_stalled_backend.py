"""A backend that stops answering holds only the calls that need it: Status and warm calls go on."""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import grpc
from plugin_support import stub
from prometheus_client.parser import text_string_to_metric_families

from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.plugin import PluginProcess
from kubekms.devenv.processes import wait_for
from kubekms_plugin.server import CALL_THREADS
from kubekms_plugin.v2 import api_pb2

SEED = bytes(range(32))
WAITERS = 2 * CALL_THREADS  # more calls waiting for the backend than the plugin has call threads
STALLED_DEADLINE = 5.0  # how long each waiting call may wait: far above what a warm call may take
# for a warm Decrypt and a Status together: far below STALLED_DEADLINE (a call queued behind the stalled ones
# is answered only once they end, which the test checks they have not); 1 s left a loaded machine little room
PROMPT = STALLED_DEADLINE / 2


def encrypt(plugin: PluginProcess) -> api_pb2.EncryptResponse:
    return stub(plugin).Encrypt(api_pb2.EncryptRequest(plaintext=SEED, uid="test"), timeout=10)


def decrypt(plugin: PluginProcess, sealed: api_pb2.EncryptResponse, timeout: float = 10) -> bytes:
    request = api_pb2.DecryptRequest(
        ciphertext=sealed.ciphertext, key_id=sealed.key_id, annotations=dict(sealed.annotations), uid="test"
    )
    return stub(plugin).Decrypt(request, timeout=timeout).plaintext


def cache_misses(plugin: PluginProcess) -> float:
    with urllib.request.urlopen(f"{plugin.health_url}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "kubekms_plugin_kek_cache_total" and sample.labels["result"] == "miss"
    )


def stalled_decrypt(plugin: PluginProcess, sealed: api_pb2.EncryptResponse) -> None:
    try:
        decrypt(plugin, sealed, timeout=STALLED_DEADLINE)
    except grpc.RpcError as error:  # the backend may still be stopped at its deadline
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED, error


def test_warm_calls_and_status_do_not_wait_behind_a_stalled_backend(
    server: KMSServer, key_alias: str, make_plugin: Callable[..., PluginProcess]
) -> None:
    plugin = make_plugin(key_alias)
    warm = encrypt(plugin)  # under the plugin's current KEK, which it keeps in memory
    # Seeds under KEKs this plugin never saw (another plugin, a new KEK per Encrypt): each needs the backend.
    sealer = make_plugin(key_alias, name="sealer", kek={"max_encryptions": 1})
    foreign = [encrypt(sealer) for _ in range(WAITERS)]
    assert server.pid is not None
    with ThreadPoolExecutor(WAITERS) as callers:
        os.kill(server.pid, signal.SIGSTOP)  # the backend stops answering; its socket still accepts
        try:
            waiting = [callers.submit(stalled_decrypt, plugin, sealed) for sealed in foreign]
            wait_for(lambda: cache_misses(plugin) >= WAITERS, 10, f"{WAITERS} Decrypts waiting for the backend")
            started = time.monotonic()
            assert decrypt(plugin, warm) == SEED
            assert stub(plugin).Status(api_pb2.StatusRequest(), timeout=5).version == "v2"
            assert time.monotonic() - started < PROMPT
            assert not any(call.done() for call in waiting)  # they were still waiting meanwhile
        finally:
            os.kill(server.pid, signal.SIGCONT)
    assert decrypt(plugin, foreign[0]) == SEED  # the backend answers again
