"""The keystore schedules deletion within the window of days its caller's wire gives: AWS's 7 to 1096 days unless
told otherwise; the Cloud KMS wire says Google's 1 to 120, on the same code path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kubekms.backend import KeyState
from kubekms.errors import InvalidArgument, Reason
from kubekms.keystore import Keystore, rules


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Keystore]:
    keystore = Keystore(tmp_path / "ks", init=True)
    yield keystore
    keystore.close()


@pytest.mark.parametrize("days", [0, 1, 6, 1097])
def test_the_default_window_is_seven_days_and_more(store: Keystore, days: int) -> None:
    key_id = store.create_key("default-window").key_id
    with pytest.raises(InvalidArgument) as refused:
        store.schedule_key_deletion(key_id, days)
    assert refused.value.reason is Reason.PENDING_DAYS_INVALID
    assert store.describe_key(key_id).state is KeyState.ENABLED  # nothing changed


def test_a_caller_s_window_replaces_it(store: Keystore) -> None:
    key_id = store.create_key("wire-window").key_id
    with pytest.raises(InvalidArgument):
        store.schedule_key_deletion(key_id, 121, window=(1, 120))
    scheduled = store.schedule_key_deletion(key_id, 1, window=(1, 120))
    assert scheduled.state is KeyState.PENDING_DELETION
    assert rules.PENDING_DAYS == (7, 1096)  # the other wires' window is unchanged
