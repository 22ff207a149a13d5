"""How the envelope reads the SDK's stream: in sizes that keep the SDK from copying frames twice.

The SDK's ``read(n)`` returns the first n bytes of its buffer and keeps the rest; a frame made
while a remainder is held is concatenated onto it (a copy of the frame). Encrypting, a frame is
longer than its plaintext, so the envelope takes each small remainder on its own before asking
for the next frame: the writes alternate between a frame's worth and that remainder.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from envelope_fixtures import call

from kubekms.envelope import Envelope, KeyRef, Keyring
from kubekms.providers import BackendConfig

FRAME = 4096
FRAMES = 10


class RecordingSink(io.BytesIO):
    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int] = []

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.sizes.append(len(data))
        return super().write(data)


def test_encryption_takes_each_frame_remainder_alone_and_decryption_one_frame_per_read(tmp_path: Path) -> None:
    config = BackendConfig(provider="local", state_dir=tmp_path / "keystore", init=True)
    call(config, "create_key", "reads")
    plaintext = os.urandom(FRAME * FRAMES + 100)
    with Keyring({"l": config}, [KeyRef("l", "reads")]) as keyring:
        envelope = Envelope(keyring, frame_bytes=FRAME)
        sealed = RecordingSink()
        envelope.encrypt_stream(io.BytesIO(plaintext), sealed, {"t": "reads"}, source_length=len(plaintext))
        opened = RecordingSink()
        envelope.decrypt_stream(io.BytesIO(sealed.getvalue()), opened)

    assert opened.getvalue() == plaintext
    assert opened.sizes == [FRAME] * FRAMES + [100]  # one frame per read, the final one short
    # first the header and frame 1 cut at a frame's worth, then per frame: its remainder, the next frame's worth
    full, remainders = sealed.sizes[0:-1:2], sealed.sizes[1:-1:2]
    assert full == [FRAME] * FRAMES, sealed.sizes
    assert len(set(remainders[1:])) == 1 and 0 < remainders[1] < 64, sealed.sizes  # sequence number, IV, tag
    assert remainders[0] > remainders[1]  # the header came with frame 1
    assert sum(sealed.sizes) == len(sealed.getvalue())
