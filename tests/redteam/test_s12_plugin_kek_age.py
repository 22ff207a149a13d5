"""The plugin stays healthy when its KEK reaches kek.max_age: it makes the next KEK before that.

A KEK is used for Encrypt for kek.max_age (7 days by default). When it got that old, Status
answered ``healthz: no KEK yet: waiting for the first backend poll`` (a wrong reason, too) until
the next poll made a new KEK: up to poll_interval (30 s by default, 60 s at most) of an unhealthy
plugin every max_age, for no fault anywhere. kube-apiserver then fails /readyz
(kms-providers) and polls Status every 10 s instead of every minute. Expected: with the backend
answering, Status stays ``ok`` and the key_id unchanged across the KEK's renewal, and what the
aged KEK sealed still decrypts.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from kubekms.backend import Backend
from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server
from kubekms.devenv.plugin import PluginProcess, kubekms_backend_settings
from kubekms.providers import BackendConfig, open_backend
from kubekms_plugin import BACKEND_ACTIONS
from kubekms_plugin.config import KekPolicy
from kubekms_plugin.keyring import Keyring
from kubekms_plugin.metrics import PluginMetrics
from kubekms_plugin.server import poll_delay
from kubekms_plugin.v2 import api_pb2, api_pb2_grpc

ALIAS = "cluster/secrets"
SEED = bytes(range(32))
MAX_AGE = 4.0  # seconds; the plugin renews a quarter of that (1 s) ahead
WATCHED = 7.0  # past the first KEK's age and into the second's
POLL_INTERVAL = "30s"  # far beyond WATCHED: no regular poll comes to the rescue


@pytest.fixture
def server(tmp_path: Path) -> Iterator[KMSServer]:
    principals = [Principal(name="plugin", actions=BACKEND_ACTIONS, keys=(ALIAS,))]
    with kms_server(tmp_path / "kms", principals=principals) as running:
        running.call("create_key", ALIAS)
        yield running


def test_status_stays_ok_while_the_kek_is_renewed_for_its_age(server: KMSServer, tmp_path: Path) -> None:
    config = {
        "backend": kubekms_backend_settings(server, "plugin"),
        "key": ALIAS,
        "poll_interval": POLL_INTERVAL,
        "kek": {"max_age": f"{MAX_AGE}s"},
    }
    plugin = PluginProcess(tmp_path / "plugin", config)
    plugin.start()
    try:
        channel = grpc.insecure_channel(plugin.endpoint)
        stub = api_pb2_grpc.KeyManagementServiceStub(channel)  # type: ignore[no-untyped-call]
        first = stub.Status(api_pb2.StatusRequest(), timeout=5)
        assert first.healthz == "ok"
        sealed = stub.Encrypt(api_pb2.EncryptRequest(plaintext=SEED, uid="t"), timeout=10)
        answers = []
        started = time.monotonic()
        while time.monotonic() - started < WATCHED:
            answer = stub.Status(api_pb2.StatusRequest(), timeout=5)
            answers.append((round(time.monotonic() - started, 2), answer.healthz, answer.key_id))
            time.sleep(0.2)
        unhealthy = [answer for answer in answers if answer[1] != "ok" or answer[2] != first.key_id]
        assert not unhealthy, f"Status while the KEK aged: {unhealthy[:3]}"
        kek_changed = stub.Encrypt(api_pb2.EncryptRequest(plaintext=SEED, uid="t"), timeout=10)
        assert kek_changed.key_id == first.key_id
        assert kek_changed.annotations != sealed.annotations  # sealed under a new KEK
        request = api_pb2.DecryptRequest(
            ciphertext=sealed.ciphertext, key_id=sealed.key_id, annotations=dict(sealed.annotations), uid="t"
        )
        assert stub.Decrypt(request, timeout=10).plaintext == SEED
    finally:
        plugin.stop()


@pytest.fixture
async def local_backend(tmp_path: Path) -> AsyncIterator[Backend]:
    opened = await open_backend(BackendConfig(provider="local", state_dir=tmp_path / "local", init=True))
    await opened.create_key(ALIAS)
    yield opened
    await opened.close()


async def test_a_poll_renews_the_kek_ahead_of_its_age_and_never_spins(local_backend: Backend) -> None:
    """The poller wakes when the KEK is due (a quarter of max_age ahead); a key that cannot get a new KEK
    (disabled) is polled at the normal interval, not in a tight loop."""
    now = [1000.0]
    keyring = Keyring(
        local_backend, ALIAS, KekPolicy(max_age=400.0), PluginMetrics(), backend_name="local", clock=lambda: now[0]
    )
    await keyring.refresh()
    first = keyring.current
    assert first is not None and keyring.health() == "ok"
    assert poll_delay(keyring, 30.0) == 30.0  # due in 300 s
    now[0] += 290.0
    assert poll_delay(keyring, 30.0) == pytest.approx(10.0)  # woken when due, not at the next interval
    now[0] += 10.0
    await keyring.refresh()
    renewed = keyring.current
    assert renewed is not None and renewed is not first and renewed.key_id == first.key_id  # same key_id
    assert keyring.health() == "ok"
    await local_backend.disable_key(ALIAS)
    now[0] += 400.0  # aged, and its key disabled: no new KEK
    await keyring.refresh()
    assert keyring.health().endswith("is disabled")
    assert poll_delay(keyring, 30.0) == 30.0
