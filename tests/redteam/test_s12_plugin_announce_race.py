"""Status announces exactly the KEK whose key_id it reports.

kube-apiserver drops an Encrypt whose key_id differs from the one its last Status call returned, and
marks the plugin unhealthy. Keyring.announce() (run by Status on gRPC's threads) read ``current``
twice: once to remember the announced KEK (the one Encrypt keeps using until the next Status), once to
report its key_id. A poll on the event loop that made a new KEK between the two reads (a rotation)
had Status report the new key_id while Encrypt went on with the old KEK and its old key_id: the
apiserver refused the DEK rotation ("status keyID does not match encrypt response keyID") and marked
the plugin unhealthy until its next Status call. The test puts the poll's swap between those two reads.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kubekms.backend import Backend
from kubekms.providers import BackendConfig, open_backend
from kubekms_plugin.config import KekPolicy
from kubekms_plugin.keyring import Kek, Keyring
from kubekms_plugin.metrics import PluginMetrics

ALIAS = "plugin/announce"
SEED = bytes(range(32))


class SwappedOnRead(Keyring):
    """A keyring whose ``current`` becomes ``then`` right after its next read: the poller's new KEK landing
    between two reads of one caller."""

    then: Kek | None = None
    _value: Kek | None = None

    @property
    def current(self) -> Kek | None:
        value = self._value
        if self.then is not None:
            self._value, self.then = self.then, None
        return value

    @current.setter
    def current(self, value: Kek | None) -> None:
        self._value = value


@pytest.fixture
async def backend(tmp_path: Path) -> AsyncIterator[Backend]:
    opened = await open_backend(BackendConfig(provider="local", state_dir=tmp_path, init=True))
    await opened.create_key(ALIAS)
    yield opened
    await opened.close()


async def test_encrypt_uses_the_key_id_status_reported_when_a_rotation_lands_mid_status(backend: Backend) -> None:
    keyring = SwappedOnRead(backend, ALIAS, KekPolicy(), PluginMetrics(), backend_name="local")
    await keyring.refresh()
    assert keyring.announce().endswith(":v1")
    old_kek = keyring.current
    await backend.rotate_key(ALIAS)
    await keyring.refresh()  # the poll learns version 2 and makes its KEK
    new_kek = keyring.current
    assert old_kek is not None and new_kek is not None and new_kek.key_id.endswith(":v2")
    keyring.current = old_kek
    keyring.then = new_kek  # the poll's swap comes between announce()'s reads
    reported = keyring.announce()
    sealed = keyring.encrypt_now(SEED)
    assert sealed is not None
    assert sealed.key_id == reported, f"Status said {reported}, the next Encrypt answered {sealed.key_id}"
