"""boto3 in two regions against the kubekms server's AWS wire: a key belongs to the region it was made in.

Another region does not see it (by id, alias or ARN, nor in ListKeys/ListAliases), its ARN carries its own
region, another account's ARN is refused as AWS refuses it, and a key of the v1.0 wire (no region) is seen
from every region.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import botocore.exceptions
import pytest
from aws_policy_support import boto_kms
from huaweicloudsdkkms.v2 import CreateKeyRequest, CreateKeyRequestBody

from kubekms.devenv.kmsserver import KMSServer, kms_server

EAST, WEST = "us-east-1", "us-west-2"
ACCOUNT = "default"


def refused(call: Any, **fields: Any) -> tuple[str, str]:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call(**fields)
    error = raised.value.response["Error"]
    return str(error["Code"]), str(error["Message"])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("kms-regions"), project_id=ACCOUNT) as running:
        yield running


@pytest.fixture(scope="module")
def east(server: KMSServer) -> Any:
    return boto_kms(server, region=EAST)


@pytest.fixture(scope="module")
def west(server: KMSServer) -> Any:
    return boto_kms(server, region=WEST)


def new_key(kms: Any, alias: str = "") -> str:
    key_id = str(kms.create_key()["KeyMetadata"]["KeyId"])
    if alias:
        kms.create_alias(AliasName=f"alias/{alias}", TargetKeyId=key_id)
    return key_id


def test_a_key_of_us_east_1_is_not_found_from_us_west_2(east: Any, west: Any) -> None:
    key_id = new_key(east, "east-only")
    east_arn = f"arn:aws:kms:{EAST}:{ACCOUNT}:key/{key_id}"
    metadata = east.describe_key(KeyId=key_id)["KeyMetadata"]
    assert metadata["Arn"] == east_arn and metadata["AWSAccountId"] == ACCOUNT
    assert east.describe_key(KeyId=east_arn)["KeyMetadata"]["KeyId"] == key_id
    assert east.encrypt(KeyId="alias/east-only", Plaintext=b"x")["KeyId"] == east_arn

    for key_ref in (key_id, "alias/east-only", f"arn:aws:kms:{EAST}:{ACCOUNT}:alias/east-only"):
        assert refused(west.describe_key, KeyId=key_ref)[0] == "NotFoundException", key_ref
    code, message = refused(west.describe_key, KeyId=east_arn)  # an ARN of another region names no key here
    assert code == "NotFoundException" and EAST in message
    assert refused(west.encrypt, KeyId=key_id, Plaintext=b"x")[0] == "NotFoundException"
    assert refused(west.generate_data_key, KeyId="alias/east-only", KeySpec="AES_256")[0] == "NotFoundException"
    assert refused(west.disable_key, KeyId=key_id)[0] == "NotFoundException"
    assert refused(west.list_resource_tags, KeyId=key_id)[0] == "NotFoundException"
    # a us-west-2 ARN of the key is no key either: the key exists in us-east-1 only
    assert refused(west.describe_key, KeyId=f"arn:aws:kms:{WEST}:{ACCOUNT}:key/{key_id}")[0] == "NotFoundException"
    # the ciphertext names the key, and the key is not in this region
    blob = east.encrypt(KeyId=key_id, Plaintext=b"secret")["CiphertextBlob"]
    assert refused(west.decrypt, CiphertextBlob=blob)[0] == "NotFoundException"
    assert east.decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret"
    assert east.describe_key(KeyId=key_id)["KeyMetadata"]["Enabled"]  # west's DisableKey changed nothing


def test_list_keys_and_aliases_are_per_region(east: Any, west: Any) -> None:
    east_key, west_key = new_key(east, "listed-east"), new_key(west, "listed-west")
    east_keys = {entry["KeyId"]: entry["KeyArn"] for entry in east.list_keys(Limit=1000)["Keys"]}
    west_keys = {entry["KeyId"]: entry["KeyArn"] for entry in west.list_keys(Limit=1000)["Keys"]}
    assert east_keys[east_key] == f"arn:aws:kms:{EAST}:{ACCOUNT}:key/{east_key}" and west_key not in east_keys
    assert west_keys[west_key] == f"arn:aws:kms:{WEST}:{ACCOUNT}:key/{west_key}" and east_key not in west_keys
    east_aliases = {entry["AliasName"]: entry for entry in east.list_aliases(Limit=100)["Aliases"]}
    west_aliases = {entry["AliasName"] for entry in west.list_aliases(Limit=100)["Aliases"]}
    assert east_aliases["alias/listed-east"]["AliasArn"] == f"arn:aws:kms:{EAST}:{ACCOUNT}:alias/listed-east"
    assert "alias/listed-west" not in east_aliases and "alias/listed-east" not in west_aliases
    assert refused(west.list_aliases, KeyId=east_key)[0] == "NotFoundException"


def test_a_second_key_must_be_of_the_region(east: Any, west: Any) -> None:
    east_key, west_key = new_key(east), new_key(west, "west-alias")
    blob = west.encrypt(KeyId=west_key, Plaintext=b"data")["CiphertextBlob"]
    assert refused(west.re_encrypt, CiphertextBlob=blob, DestinationKeyId=east_key)[0] == "NotFoundException"
    assert refused(west.update_alias, AliasName="alias/west-alias", TargetKeyId=east_key)[0] == "NotFoundException"
    assert refused(west.create_alias, AliasName="alias/to-east", TargetKeyId=east_key)[0] == "NotFoundException"
    assert west.describe_key(KeyId="alias/west-alias")["KeyMetadata"]["KeyId"] == west_key  # the alias did not move


def test_another_accounts_arn_is_access_denied(east: Any) -> None:
    key_id = new_key(east)
    for arn in (f"arn:aws:kms:{EAST}:111122223333:key/{key_id}", f"arn:aws:kms:{EAST}:111122223333:alias/x"):
        code, message = refused(east.describe_key, KeyId=arn)
        assert code == "AccessDeniedException" and "111122223333" in message, arn
    code, _ = refused(east.encrypt, KeyId=f"arn:aws:kms:{EAST}:111122223333:key/{key_id}", Plaintext=b"x")
    assert code == "AccessDeniedException"


def test_a_v1_key_has_no_region_and_is_seen_from_every_region(
    server: KMSServer, east: Any, west: Any, sdk_client: Any
) -> None:
    huawei = sdk_client(server, project_id=ACCOUNT)
    body = CreateKeyRequestBody(key_alias="made-on-v1", key_description="v1 key")
    key_id = huawei.create_key(CreateKeyRequest(body=body)).key_info.key_id
    for region, kms in ((EAST, east), (WEST, west)):
        assert kms.describe_key(KeyId="alias/made-on-v1")["KeyMetadata"]["Arn"] == (
            f"arn:aws:kms:{region}:{ACCOUNT}:key/{key_id}"
        )
        assert key_id in {entry["KeyId"] for entry in kms.list_keys(Limit=1000)["Keys"]}


def test_grants_are_listed_and_retired_in_their_keys_region(east: Any, west: Any) -> None:
    retiring = f"arn:aws:iam::{ACCOUNT}:user/retirer"  # admin is a principal of every key: it may list anyone's
    key_id = new_key(east)
    granted = east.create_grant(KeyId=key_id, GranteePrincipal=retiring, RetiringPrincipal=retiring,
                                Operations=["Encrypt"])  # fmt: skip
    listed = east.list_retirable_grants(RetiringPrincipal=retiring)["Grants"]
    assert [(grant["GrantId"], grant["KeyId"]) for grant in listed] == [
        (granted["GrantId"], f"arn:aws:kms:{EAST}:{ACCOUNT}:key/{key_id}")
    ]
    assert west.list_retirable_grants(RetiringPrincipal=retiring)["Grants"] == []
    assert refused(west.list_grants, KeyId=key_id)[0] == "NotFoundException"
    assert refused(west.revoke_grant, KeyId=key_id, GrantId=granted["GrantId"])[0] == "NotFoundException"
    assert east.list_grants(KeyId=key_id)["Grants"][0]["GrantId"] == granted["GrantId"]
