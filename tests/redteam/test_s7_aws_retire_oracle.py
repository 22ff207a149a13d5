"""RetireGrant by KeyId and GrantId tells a caller nothing about keys it may not use.

Every other operation answers AccessDeniedException for a key outside the caller's reach, whether it
exists or not. RetireGrant looked the grant up first: NotFoundException "key ... does not exist" for
a missing key, "no such grant" for an existing key, AccessDeniedException for an existing grant: a
key and grant existence oracle. Now a caller not allowed RetireGrant on the key gets
AccessDeniedException in all three cases; the grant's own retiring principal still retires it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from aws_refusal_support import refused

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server

DAN = Principal("dan", actions=("retire-grant", "describe-key"), keys=("own",))
EVE = Principal("eve", actions=("retire-grant",), keys=("own",))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("kms"), principals=(DAN, EVE), project_id="default") as running:
        yield running


def test_retire_grant_is_no_existence_oracle(server: KMSServer) -> None:
    admin, dan = server.aws_client(), server.aws_client("dan", validate=False)
    key_id = admin.create_key()["KeyMetadata"]["KeyId"]
    grant = admin.create_grant(KeyId=key_id, GranteePrincipal="arn:aws:iam::default:user/eve", Operations=["Decrypt"],
                               RetiringPrincipal="arn:aws:iam::default:user/eve")  # fmt: skip
    answers = {
        refused(lambda: dan.retire_grant(KeyId=str(uuid.uuid4()), GrantId="a" * 64)),
        refused(lambda: dan.retire_grant(KeyId=key_id, GrantId="a" * 64)),
        refused(lambda: dan.retire_grant(KeyId=key_id, GrantId=grant["GrantId"])),
    }
    assert answers == {"AccessDeniedException"}
    eve = server.aws_client("eve", validate=False)
    eve.retire_grant(KeyId=key_id, GrantId=grant["GrantId"])
    assert admin.list_grants(KeyId=key_id)["Grants"] == []
    assert refused(lambda: admin.retire_grant(KeyId=key_id, GrantId=grant["GrantId"])) == "NotFoundException"
