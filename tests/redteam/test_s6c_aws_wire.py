"""boto3 against the server's AWS wire: what AWS KMS refuses is refused, with AWS's exception (h5-findings #9, #15).

Tag keys under ``aws:`` (any case) are AWS's own (TagException); a key holds at most 50 tags (the
LimitExceededException of TagResource and CreateKey); an encryption context never names an empty key
(ValidationException); aliases under ``alias/gcp/`` belong to the Cloud KMS API's key versions and are
reserved as ``alias/aws/`` is on AWS (NotAuthorizedException), so nobody plants one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import botocore.config
import botocore.exceptions
import pytest

from kubekms.devenv.kmsserver import KMSServer, kms_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("kms"), project_id="default") as running:
        yield running


@pytest.fixture(scope="module")
def kms(server: KMSServer) -> Any:
    return server.aws_client()


@pytest.fixture(scope="module")
def key_id(kms: Any) -> str:
    return str(kms.create_key(Tags=[{"TagKey": "kept", "TagValue": "yes"}])["KeyMetadata"]["KeyId"])


def refused(call: Callable[[], object]) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call()
    return str(raised.value.response["Error"]["Code"])


def tags(count: int, prefix: str = "t") -> list[dict[str, str]]:
    return [{"TagKey": f"{prefix}{i}", "TagValue": "v"} for i in range(count)]


@pytest.mark.parametrize("tag_key", ["aws:x", "AWS:cost", "Aws:"])
def test_aws_tag_keys_are_reserved(kms: Any, key_id: str, tag_key: str) -> None:
    keys_before = len(kms.list_keys()["Keys"])
    reserved = [{"TagKey": "fine", "TagValue": "v"}, {"TagKey": tag_key, "TagValue": "v"}]
    assert refused(lambda: kms.tag_resource(KeyId=key_id, Tags=reserved)) == "TagException"
    assert refused(lambda: kms.create_key(Tags=reserved)) == "TagException"
    assert kms.list_resource_tags(KeyId=key_id)["Tags"] == [{"TagKey": "kept", "TagValue": "yes"}]
    assert len(kms.list_keys()["Keys"]) == keys_before


def test_a_tag_key_merely_containing_aws_is_kept(kms: Any) -> None:
    key = kms.create_key(Tags=[{"TagKey": "team:aws:x", "TagValue": "v"}])["KeyMetadata"]["KeyId"]
    assert kms.list_resource_tags(KeyId=key)["Tags"] == [{"TagKey": "team:aws:x", "TagValue": "v"}]


def test_more_than_50_tags_is_limit_exceeded(kms: Any) -> None:
    assert refused(lambda: kms.create_key(Tags=tags(51))) == "LimitExceededException"
    key = kms.create_key(Tags=tags(50))["KeyMetadata"]["KeyId"]
    assert refused(lambda: kms.tag_resource(KeyId=key, Tags=tags(1, "new"))) == "LimitExceededException"
    kms.tag_resource(KeyId=key, Tags=tags(1))  # rewriting a tag the key holds adds none
    assert len(kms.list_resource_tags(KeyId=key, Limit=100)["Tags"]) == 50


def test_an_empty_encryption_context_key_is_a_validation_error(kms: Any, key_id: str) -> None:
    empty, fine = {"": "b"}, {"a": "b"}
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"x", EncryptionContext=fine)["CiphertextBlob"]
    calls: list[Callable[[], object]] = [
        lambda: kms.encrypt(KeyId=key_id, Plaintext=b"x", EncryptionContext=empty),
        lambda: kms.generate_data_key(KeyId=key_id, KeySpec="AES_256", EncryptionContext=empty),
        lambda: kms.generate_data_key_without_plaintext(KeyId=key_id, KeySpec="AES_256", EncryptionContext=empty),
        lambda: kms.re_encrypt(
            CiphertextBlob=blob,
            SourceEncryptionContext=fine,
            DestinationKeyId=key_id,
            DestinationEncryptionContext=empty,
        ),
        lambda: kms.create_grant(
            KeyId=key_id,
            GranteePrincipal="arn:aws:iam::123456789012:user/g",
            Operations=["Decrypt"],
            Constraints={"EncryptionContextEquals": empty},
        ),
        lambda: kms.create_grant(
            KeyId=key_id,
            GranteePrincipal="arn:aws:iam::123456789012:user/g",
            Operations=["Decrypt"],
            Constraints={"EncryptionContextSubset": empty},
        ),
    ]
    assert [refused(call) for call in calls] == ["ValidationException"] * len(calls)
    assert kms.list_grants(KeyId=key_id)["Grants"] == []
    assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=fine)["Plaintext"] == b"x"
    assert refused(lambda: kms.decrypt(CiphertextBlob=blob, EncryptionContext=empty)) == "InvalidCiphertextException"


def test_what_an_empty_context_key_sealed_before_the_rule_still_decrypts(
    server: KMSServer, kms: Any, key_id: str
) -> None:
    """Sealed as the server allowed until the rule came (the same associated data, through the backend API):
    refusing to seal more must not make that data unreadable."""
    sealed = server.call("create_data_key", key_id, length=32, aad=b'{"":"b"}')
    assert kms.decrypt(CiphertextBlob=sealed.ciphertext, EncryptionContext={"": "b"})["Plaintext"] == sealed.plaintext


@pytest.mark.parametrize("name", ["alias/gcp/global/ring/key/1", "alias/gcp/x"])
def test_cloud_kms_aliases_cannot_be_planted(kms: Any, key_id: str, name: str) -> None:
    assert refused(lambda: kms.create_alias(AliasName=name, TargetKeyId=key_id)) == "NotAuthorizedException"
    assert refused(lambda: kms.create_alias(AliasName="alias/aws/x", TargetKeyId=key_id)) == "NotAuthorizedException"
    kms.create_alias(AliasName="alias/gcpx/ok", TargetKeyId=key_id)  # only the gcp/ prefix is reserved
    kms.delete_alias(AliasName="alias/gcpx/ok")
    assert [alias["AliasName"] for alias in kms.list_aliases(KeyId=key_id)["Aliases"]] == []
