"""The real Huawei Cloud SDK against our server: key lifecycle, every data-key operation, error codes."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkkms.v2 import (
    BatchCreateKmsTagsRequest,
    BatchCreateKmsTagsRequestBody,
    CancelKeyDeletionRequest,
    CreateAliasRequest,
    CreateAliasRequestBody,
    CreateDatakeyRequest,
    CreateDatakeyRequestBody,
    CreateDatakeyWithoutPlaintextRequest,
    CreateKeyRequest,
    CreateKeyRequestBody,
    CreateKmsTagRequest,
    CreateKmsTagRequestBody,
    CreateRandomRequest,
    DecryptDatakeyRequest,
    DecryptDatakeyRequestBody,
    DeleteAliasRequest,
    DeleteAliasRequestBody,
    DeleteKeyRequest,
    DeleteTagRequest,
    DisableKeyRequest,
    DisableKeyRotationRequest,
    EnableKeyRequest,
    EnableKeyRotationRequest,
    EncryptDatakeyRequest,
    EncryptDatakeyRequestBody,
    GenRandomRequestBody,
    KmsClient,
    ListAliasesRequest,
    ListKeyDetailRequest,
    ListKeysRequest,
    ListKeysRequestBody,
    ListKmsByTagsRequest,
    ListKmsByTagsRequestBody,
    OperateKeyRequestBody,
    RotateOnDemandRequest,
    RotateOnDemandRequestBody,
    ScheduleKeyDeletionRequestBody,
    ShowKeyRotationStatusRequest,
    ShowKmsTagsRequest,
    ShowUserInstancesRequest,
    ShowUserQuotasRequest,
    Tag,
    TagItem,
    UpdateKeyDescriptionRequest,
    UpdateKeyDescriptionRequestBody,
    UpdateKeyRotationIntervalRequest,
    UpdateKeyRotationIntervalRequestBody,
)

KeyMaker = Callable[[str], str]


def create_key(client: KmsClient, alias: str, description: str = "") -> str:
    body = CreateKeyRequestBody(key_alias=alias, key_description=description)
    return client.create_key(CreateKeyRequest(body=body)).key_info.key_id


def key_body(key_id: str) -> OperateKeyRequestBody:
    return OperateKeyRequestBody(key_id=key_id)


def describe(client: KmsClient, key_ref: str):
    return client.list_key_detail(ListKeyDetailRequest(body=key_body(key_ref))).key_info


def expect_error(call: Callable[[], object], status: int, code: str) -> ClientRequestException:
    with pytest.raises(ClientRequestException) as caught:
        call()
    assert (caught.value.status_code, caught.value.error_code) == (status, code), caught.value.error_msg
    assert caught.value.request_id  # X-Request-Id reaches the SDK
    return caught.value


def test_full_key_lifecycle(client: KmsClient, unique: KeyMaker) -> None:
    alias = unique("lifecycle")
    key_id = create_key(client, alias, "first")
    info = describe(client, key_id)
    assert (info.key_alias, info.key_state, info.key_description, info.domain_id) == (alias, "2", "first", "proj1")
    assert info.creation_date.isdigit() and len(info.creation_date) == 13  # epoch milliseconds
    assert describe(client, alias).key_id == key_id  # by alias too

    listed = client.list_keys(ListKeysRequest(body=ListKeysRequestBody(limit="1000", key_state="2")))
    assert key_id in listed.keys and listed.truncated == "false"
    assert isinstance(listed.total, int) and listed.total >= 1

    client.update_key_description(
        UpdateKeyDescriptionRequest(body=UpdateKeyDescriptionRequestBody(key_id=key_id, key_description="second"))
    )
    assert describe(client, key_id).key_description == "second"

    assert client.disable_key(DisableKeyRequest(body=key_body(key_id))).key_info.key_state == "3"
    assert client.enable_key(EnableKeyRequest(body=key_body(key_id))).key_info.key_state == "2"

    deletion = client.delete_key(DeleteKeyRequest(body=ScheduleKeyDeletionRequestBody(key_id=key_id, pending_days="7")))
    assert (deletion.key_id, deletion.key_state) == (key_id, "4")
    pending = describe(client, key_id)
    assert pending.key_state == "4" and pending.scheduled_deletion_date.isdigit()
    cancelled = client.cancel_key_deletion(CancelKeyDeletionRequest(body=key_body(key_id)))
    assert cancelled.key_state == "3"  # the key comes back disabled
    assert describe(client, key_id).scheduled_deletion_date == ""


def test_rotation(client: KmsClient, unique: KeyMaker) -> None:
    key_id = create_key(client, unique("rotation"))
    client.enable_key_rotation(EnableKeyRotationRequest(body=key_body(key_id)))
    client.update_key_rotation_interval(
        UpdateKeyRotationIntervalRequest(body=UpdateKeyRotationIntervalRequestBody(key_id=key_id, rotation_interval=90))
    )
    status = client.show_key_rotation_status(ShowKeyRotationStatusRequest(body=key_body(key_id)))
    assert (status.key_rotation_enabled, status.rotation_interval, status.number_of_rotations) == (True, 90, 0)

    old = client.create_datakey(CreateDatakeyRequest(body=CreateDatakeyRequestBody(key_id=key_id)))
    client.rotate_on_demand(RotateOnDemandRequest(body=RotateOnDemandRequestBody(key_id=key_id)))
    status = client.show_key_rotation_status(ShowKeyRotationStatusRequest(body=key_body(key_id)))
    assert status.number_of_rotations == 1 and status.last_rotation_time.isdigit()
    # the old version keeps decrypting
    body = DecryptDatakeyRequestBody(key_id=key_id, cipher_text=old.cipher_text, datakey_cipher_length="32")
    assert client.decrypt_datakey(DecryptDatakeyRequest(body=body)).data_key == old.plain_text

    client.disable_key_rotation(DisableKeyRotationRequest(body=key_body(key_id)))
    status = client.show_key_rotation_status(ShowKeyRotationStatusRequest(body=key_body(key_id)))
    assert status.key_rotation_enabled is False


def test_every_data_key_operation(client: KmsClient, unique: KeyMaker) -> None:
    key_id = create_key(client, unique("datakeys"))
    aad = "tenant=a"

    created = client.create_datakey(
        CreateDatakeyRequest(
            body=CreateDatakeyRequestBody(key_id=key_id, datakey_length="512", additional_authenticated_data=aad)
        )
    )
    assert created.key_id == key_id and len(bytes.fromhex(created.plain_text)) == 64  # bits on create

    decrypted = client.decrypt_datakey(
        DecryptDatakeyRequest(
            body=DecryptDatakeyRequestBody(
                key_id=key_id,
                cipher_text=created.cipher_text,
                datakey_cipher_length="64",
                additional_authenticated_data=aad,
            )
        )
    )
    assert decrypted.data_key == created.plain_text
    assert decrypted.datakey_length == "64"
    assert decrypted.datakey_dgst == hashlib.sha256(bytes.fromhex(created.plain_text)).hexdigest()

    spec128 = client.create_datakey(
        CreateDatakeyRequest(body=CreateDatakeyRequestBody(key_id=key_id, key_spec="AES_128"))
    )
    assert len(bytes.fromhex(spec128.plain_text)) == 16

    without = client.create_datakey_without_plaintext(
        CreateDatakeyWithoutPlaintextRequest(body=CreateDatakeyRequestBody(key_id=key_id))
    )
    assert without.cipher_text and not getattr(without, "plain_text", None)
    body = DecryptDatakeyRequestBody(key_id=key_id, cipher_text=without.cipher_text, datakey_cipher_length="32")
    assert len(bytes.fromhex(client.decrypt_datakey(DecryptDatakeyRequest(body=body)).data_key)) == 32

    dek = os.urandom(32)
    encrypted = client.encrypt_datakey(
        EncryptDatakeyRequest(
            body=EncryptDatakeyRequestBody(
                key_id=key_id, plain_text=(dek + hashlib.sha256(dek).digest()).hex(), datakey_plain_length="32"
            )
        )
    )
    assert encrypted.datakey_length == "32"
    body = DecryptDatakeyRequestBody(key_id=key_id, cipher_text=encrypted.cipher_text, datakey_cipher_length="32")
    assert client.decrypt_datakey(DecryptDatakeyRequest(body=body)).data_key == dek.hex()

    random = client.create_random(CreateRandomRequest(body=GenRandomRequestBody(random_data_length="512")))
    assert len(bytes.fromhex(random.random_data)) == 64


def test_instances_and_quotas(client: KmsClient, unique: KeyMaker) -> None:
    before = client.show_user_instances(ShowUserInstancesRequest()).instance_num
    create_key(client, unique("count"))
    assert client.show_user_instances(ShowUserInstancesRequest()).instance_num == before + 1
    resources = client.show_user_quotas(ShowUserQuotasRequest()).quotas.resources
    cmk = next(r for r in resources if r.type == "CMK")
    assert (cmk.used, cmk.quota) == (before + 1, 1000)


def test_error_cases_have_the_wire_codes(client: KmsClient, unique: KeyMaker) -> None:
    key_id = create_key(client, unique("errors"))
    datakey = CreateDatakeyRequest(body=CreateDatakeyRequestBody(key_id=key_id))

    expect_error(lambda: describe(client, "0d0466b0-e727-4d9c-b35d-f84bb474a37f"), 404, "KMS.0207")
    expect_error(lambda: describe(client, "no-such-alias"), 404, "KMS.0207")
    expect_error(lambda: create_key(client, "bad alias!"), 400, "KMS.1101")
    expect_error(lambda: create_key(client, describe(client, key_id).key_alias), 400, "KMS.1104")
    expect_error(
        lambda: client.delete_key(
            DeleteKeyRequest(body=ScheduleKeyDeletionRequestBody(key_id=key_id, pending_days="6"))
        ),
        400,
        "KMS.1401",
    )
    expect_error(
        lambda: client.delete_key(
            DeleteKeyRequest(body=ScheduleKeyDeletionRequestBody(key_id=key_id, pending_days="x"))
        ),
        400,
        "KMS.1401",
    )
    expect_error(lambda: client.enable_key(EnableKeyRequest(body=key_body(key_id))), 400, "KMS.1201")
    expect_error(
        lambda: client.create_datakey(
            CreateDatakeyRequest(body=CreateDatakeyRequestBody(key_id=key_id, datakey_length="100"))
        ),
        400,
        "KMS.1903",
    )
    expect_error(
        lambda: client.create_random(CreateRandomRequest(body=GenRandomRequestBody(random_data_length="12"))),
        400,
        "KMS.1802",
    )

    good = client.create_datakey(datakey)
    tampered = bytearray(bytes.fromhex(good.cipher_text))
    tampered[-1] ^= 1
    for cipher_text in (tampered.hex(), good.cipher_text[:20], "not-hex"):
        body = DecryptDatakeyRequestBody(key_id=key_id, cipher_text=cipher_text, datakey_cipher_length="32")
        expect_error(lambda body=body: client.decrypt_datakey(DecryptDatakeyRequest(body=body)), 400, "KMS.2201")
    wrong_aad = DecryptDatakeyRequestBody(
        key_id=key_id, cipher_text=good.cipher_text, datakey_cipher_length="32", additional_authenticated_data="other"
    )
    expect_error(lambda: client.decrypt_datakey(DecryptDatakeyRequest(body=wrong_aad)), 400, "KMS.2201")
    wrong_length = DecryptDatakeyRequestBody(key_id=key_id, cipher_text=good.cipher_text, datakey_cipher_length="16")
    expect_error(lambda: client.decrypt_datakey(DecryptDatakeyRequest(body=wrong_length)), 400, "KMS.2204")
    dek = os.urandom(32)
    bad_digest = EncryptDatakeyRequestBody(key_id=key_id, plain_text=(dek + bytes(32)).hex(), datakey_plain_length="32")
    expect_error(lambda: client.encrypt_datakey(EncryptDatakeyRequest(body=bad_digest)), 400, "KMS.2103")

    client.disable_key(DisableKeyRequest(body=key_body(key_id)))
    expect_error(lambda: client.create_datakey(datakey), 400, "KMS.0209")
    expect_error(lambda: client.disable_key(DisableKeyRequest(body=key_body(key_id))), 400, "KMS.1301")
    body = DecryptDatakeyRequestBody(key_id=key_id, cipher_text=good.cipher_text, datakey_cipher_length="32")
    expect_error(lambda: client.decrypt_datakey(DecryptDatakeyRequest(body=body)), 400, "KMS.0209")

    client.delete_key(DeleteKeyRequest(body=ScheduleKeyDeletionRequestBody(key_id=key_id, pending_days="7")))
    expect_error(lambda: client.create_datakey(datakey), 400, "KMS.0210")
    expect_error(
        lambda: client.delete_key(
            DeleteKeyRequest(body=ScheduleKeyDeletionRequestBody(key_id=key_id, pending_days="7"))
        ),
        400,
        "KMS.1402",
    )
    client.cancel_key_deletion(CancelKeyDeletionRequest(body=key_body(key_id)))
    expect_error(lambda: client.cancel_key_deletion(CancelKeyDeletionRequest(body=key_body(key_id))), 400, "KMS.1501")


def test_projects_isolate_tenants(client: KmsClient, server, sdk_client, unique: KeyMaker) -> None:
    alias = unique("tenant-one")
    key_id = create_key(client, alias)
    other_tenant = sdk_client(server, project_id="proj2")
    expect_error(lambda: describe(other_tenant, key_id), 404, "KMS.0207")
    expect_error(lambda: describe(other_tenant, alias), 404, "KMS.0207")
    assert create_key(other_tenant, alias) != key_id  # the same alias is free in another project
    listed = other_tenant.list_keys(ListKeysRequest(body=ListKeysRequestBody(limit="1000")))
    assert key_id not in listed.keys


def test_aliases_and_tags_through_the_sdk(client: KmsClient, unique: KeyMaker) -> None:
    alias = unique("sdk-aliased")
    key_id = create_key(client, alias)
    second = unique("sdk-second")
    created = client.create_alias(CreateAliasRequest(body=CreateAliasRequestBody(key_id=key_id, alias=second)))
    assert (created.key_id, created.alias) == (key_id, second)
    assert describe(client, second).key_id == key_id
    pages = client.list_aliases(ListAliasesRequest(key_id=key_id)).body
    assert {entity.alias for entity in pages[0].aliases} == {alias, second}
    client.delete_alias(DeleteAliasRequest(body=DeleteAliasRequestBody(key_id=key_id, aliases=[second])))
    expect_error(lambda: describe(client, second), 404, "KMS.0207")

    uid = unique("uid")
    client.create_kms_tag(
        CreateKmsTagRequest(key_id=key_id, body=CreateKmsTagRequestBody(tag=TagItem(key="uid", value=uid)))
    )
    client.batch_create_kms_tags(
        BatchCreateKmsTagsRequest(
            key_id=key_id,
            body=BatchCreateKmsTagsRequestBody(action="create", tags=[TagItem(key="env", value="prod")]),
        )
    )
    shown = client.show_kms_tags(ShowKmsTagsRequest(key_id=key_id))
    assert {t.key: t.value for t in shown.tags} == {"uid": uid, "env": "prod"}
    found = client.list_kms_by_tags(
        ListKmsByTagsRequest(
            resource_instances="resource_instances",
            body=ListKmsByTagsRequestBody(action="filter", tags=[Tag(key="uid", values=[uid])]),
        )
    )
    assert [r.resource_id for r in found.resources] == [key_id] and found.total_count == 1
    assert found.resources[0].resource_detail.key_alias == alias
    client.delete_tag(DeleteTagRequest(key_id=key_id, key="env"))
    assert [t.key for t in client.show_kms_tags(ShowKmsTagsRequest(key_id=key_id)).tags] == ["uid"]
