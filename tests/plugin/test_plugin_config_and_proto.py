"""Plugin config validation, and the committed stubs against the .proto and upstream's numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubekms_plugin import protogen
from kubekms_plugin.config import ConfigError, load_config
from kubekms_plugin.v2 import api_pb2

VALID = {
    "socket": "/run/kubekms/kms.sock",
    "backend": {"provider": "kubekms", "endpoint": "http://127.0.0.1:8443"},
    "key": "cluster",
}


def test_a_valid_file_with_flag_overrides(tmp_path: Path) -> None:
    path = tmp_path / "plugin.yaml"
    path.write_text(
        "socket: /tmp/a.sock\nkey: k\npoll_interval: 45s\nbackend: {provider: kubekms, endpoint: http://x}\n"
    )
    config = load_config(path, {"key": "from-flag", "kek.max_age": "24h", "socket": None})
    assert (config.key, str(config.socket), config.poll_interval, config.kek.max_age) == (
        "from-flag",
        "/tmp/a.sock",
        45.0,
        86400.0,
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"socket": None}, "socket: required"),
        ({"key": ""}, "key: required"),
        ({"poll_interval": "2m"}, "at most 60s"),
        ({"poll_interval": "soon"}, "expected a duration"),
        ({"backend": {"provider": "vault"}}, "backend.provider"),
        ({"backend": {"provider": "kubekms"}}, "backend.endpoint: required"),
        (
            {"backend": {"provider": "kubekms", "endpoint": "x", "secret_key": "s"}},
            "credentials go in credentials_file",
        ),
        ({"backend": {"provider": "kubekms", "endpoint": "x", "credentials_file": "/nonexistent"}}, "not a readable"),
        ({"kek": {"cache_size": 0}}, "kek.cache_size"),
        ({"health_address": "8787"}, "host:port"),
        ({"colour": "blue"}, "unknown field"),
    ],
)
def test_invalid_settings_are_refused_precisely(change: dict[str, object], message: str) -> None:
    data = {**VALID, **change}
    overrides = {key: value for key, value in data.items()}
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_committed_stubs_match_the_proto(tmp_path: Path) -> None:
    generated = protogen.generate(tmp_path)
    committed = Path(protogen.__file__).parent / "v2"
    assert [path.name for path in generated] == ["api_pb2.py", "api_pb2.pyi", "api_pb2_grpc.py"]
    for path in generated:
        assert path.read_bytes() == (committed / path.name).read_bytes(), f"{path.name} is stale: regenerate it"


def test_field_numbers_are_upstreams() -> None:
    expected = {
        "StatusResponse": {"version": 1, "healthz": 2, "key_id": 3},
        "DecryptRequest": {"ciphertext": 1, "uid": 2, "key_id": 3, "annotations": 4},
        "DecryptResponse": {"plaintext": 1},
        "EncryptRequest": {"plaintext": 1, "uid": 2},
        "EncryptResponse": {"ciphertext": 1, "key_id": 2, "annotations": 3},
    }
    for message, fields in expected.items():
        descriptor = api_pb2.DESCRIPTOR.message_types_by_name[message]
        assert {field.name: field.number for field in descriptor.fields} == fields
    service = api_pb2.DESCRIPTOR.services_by_name["KeyManagementService"]
    assert service.full_name == "v2.KeyManagementService"
    assert [method.name for method in service.methods] == ["Status", "Decrypt", "Encrypt"]
