"""The REST provider sends UTF-8 JSON: a KMSKey's largest schema-valid tags of non-ASCII text reach the server."""

from __future__ import annotations

from pathlib import Path

from kubekms.devenv.kmsserver import kms_server
from kubekms.providers import open_backend

# the KMSKey CRD's limits: 40 tags, keys of 128 characters, values of 255
TAG_COUNT, TAG_KEY_CHARS, TAG_VALUE_CHARS = 40, 128, 255


async def test_the_crds_largest_tags_in_emoji_are_created_and_read_back(tmp_path: Path) -> None:
    tags = {
        f"{index:02d}" + "🔑" * (TAG_KEY_CHARS - 2): "é" + "🗝" * (TAG_VALUE_CHARS - 1) for index in range(TAG_COUNT)
    }
    with kms_server(tmp_path) as server:
        backend = await open_backend(server.backend_config())
        try:
            # \\u-escaped, these tags alone took ~184 KiB: refused as larger than the server's 64 KiB body limit
            made = await backend.create_key("emoji-tags", tags=tags)
            assert dict((await backend.describe_key(made.key_id)).tags) == tags
        finally:
            await backend.close()
