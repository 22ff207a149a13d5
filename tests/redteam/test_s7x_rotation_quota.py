"""RotateKeyOnDemand had no per-key limit: a principal allowed it added key versions without bound.

AWS (botocore's RotateKeyOnDemand documentation): "You can perform on-demand key rotation a maximum of 25
times per KMS key", else LimitExceededException. Counted per key, on-demand rotations only (automatic ones
do not count: tests/unit/test_keystore.py); the same keystore rule on every wire (v1.0: KMS.1105).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aws_refusal_support import refused

from kubekms.devenv.kmsserver import KMSServer, kms_server
from kubekms.errors import LimitExceeded

QUOTA = 25


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("s7x-rotations")) as running:
        yield running


def test_the_26th_on_demand_rotation_of_a_key_is_a_limit_exceeded(server: KMSServer) -> None:
    kms = server.aws_client()
    key_id, other = (kms.create_key()["KeyMetadata"]["KeyId"] for _ in range(2))
    for _ in range(QUOTA):
        kms.rotate_key_on_demand(KeyId=key_id)
    assert refused(lambda: kms.rotate_key_on_demand(KeyId=key_id)) == "LimitExceededException"
    with pytest.raises(LimitExceeded, match="25 on-demand rotations"):
        server.call("rotate_key", key_id)  # the v1.0 wire's rotate-on-demand: the same rule
    assert len(kms.list_key_rotations(KeyId=key_id, Limit=100)["Rotations"]) == QUOTA  # nothing written
    assert server.call("describe_key", key_id).current_version == QUOTA + 1
    kms.rotate_key_on_demand(KeyId=other)  # per key
