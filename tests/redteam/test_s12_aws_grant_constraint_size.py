"""A grant constraint holds at most 8 encryption context pairs of at most 384 characters each (ValidationException).

AWS: "Each constraint value can include up to 8 encryption context pairs. The encryption context value in
each constraint cannot exceed 384 characters." The wire took any number of pairs of any length (up to the
request body's limit), stored with the grant and listed by every ListGrants of the key.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import pytest
from aws_refusal_support import refused

from kubekms.devenv.kmsserver import kms_server

BOB = "arn:aws:iam::default:user/bob"
NAMES = ("EncryptionContextEquals", "EncryptionContextSubset")


@pytest.fixture(scope="module")
def kms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with kms_server(tmp_path_factory.mktemp("kms"), project_id="default") as running:
        yield running.aws_client(validate=False)


@pytest.mark.parametrize("name", NAMES)
def test_a_constraint_is_at_most_8_pairs_of_384_characters(kms: Any, name: str) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    grant = functools.partial(kms.create_grant, KeyId=key_id, GranteePrincipal=BOB, Operations=["Decrypt"])
    too_large = (
        {f"k{i}": "v" for i in range(9)},
        {"k": "v" * 385},
        {"k" * 385: "v"},
    )
    for context in too_large:
        assert refused(functools.partial(grant, Constraints={name: context})) == "ValidationException"
    assert kms.list_grants(KeyId=key_id)["Grants"] == []  # the refused calls made no grant
    largest = {f"k{i}": "v" * 384 for i in range(8)}
    made = grant(Constraints={name: largest})
    assert [g["GrantId"] for g in kms.list_grants(KeyId=key_id)["Grants"]] == [made["GrantId"]]
    assert grant(Constraints={name: {"k" * 384: "v"}})["GrantId"]
