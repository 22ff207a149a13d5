"""ListKeyPolicies takes a Limit of 1-1000 (default 100), as AWS's API reference and botocore's model say.

The wire held it to the 1-100 of ListAliases and ListGrants, so a Limit of 101-1000 that AWS takes was
refused with ValidationException.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import pytest
from aws_refusal_support import refused

from kubekms.devenv.kmsserver import kms_server


@pytest.fixture(scope="module")
def kms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with kms_server(tmp_path_factory.mktemp("kms"), project_id="default") as running:
        yield running.aws_client(validate=False)


def test_list_key_policies_takes_a_limit_of_1_to_1000(kms: Any) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    for limit in (1, 101, 1000):
        answer = kms.list_key_policies(KeyId=key_id, Limit=limit)
        assert answer["PolicyNames"] == ["default"] and not answer["Truncated"]
    for limit in (0, 1001):
        assert refused(functools.partial(kms.list_key_policies, KeyId=key_id, Limit=limit)) == "ValidationException"
