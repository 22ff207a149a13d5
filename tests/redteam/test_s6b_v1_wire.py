"""The v1.0 wire through Huawei's own SDK (huaweicloudsdkkms) against a real server, on what the wire documents.

Huawei's request models (design/kms-rest-v1-wire.md, reference/huawei-kms-models.txt): tag keys and values
may not hold the non-printing characters ASCII 0-31; list-keys lists AES_256 keys unless ``key_spec`` says
otherwise (``ALL`` for every key) and filters by it; ``rotation_interval`` is 30 to 365 days (KMS.3001).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
import yaml
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkkms.v2 import (
    BatchCreateKmsTagsRequest,
    BatchCreateKmsTagsRequestBody,
    CreateAliasRequest,
    CreateAliasRequestBody,
    CreateKeyRequest,
    CreateKeyRequestBody,
    CreateKmsTagRequest,
    CreateKmsTagRequestBody,
    KmsClient,
    ListAliasesRequest,
    ListKeysRequest,
    ListKeysRequestBody,
    ShowKmsTagsRequest,
    TagItem,
    UpdateKeyRotationIntervalRequest,
    UpdateKeyRotationIntervalRequestBody,
)

from kubekms.backend import KeyMetadata
from kubekms.devenv.kmsserver import KMSServer, kms_server
from kubekms.providers import open_backend


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("kms"), project_id="proj1") as running:
        yield running


@pytest.fixture(scope="module")
def sdk(server: KMSServer) -> KmsClient:
    credentials = yaml.safe_load(server.credentials_file("admin").read_text())
    basic = BasicCredentials(credentials["access_key"], credentials["secret_key"], server.project_id)
    return KmsClient.new_builder().with_credentials(basic).with_endpoint(server.endpoint).build()


@pytest.fixture(scope="module")
def keys(sdk: KmsClient) -> dict[str, str]:
    """One AES_256 and one RSA_2048 key: key spec -> key id."""
    made = {}
    for spec in ("AES_256", "RSA_2048"):
        body = CreateKeyRequestBody(key_alias=f"s6b-{spec.lower()}", key_spec=spec)
        made[spec] = sdk.create_key(CreateKeyRequest(body=body)).key_info.key_id
    return made


def refusal(call: object) -> tuple[int, str]:
    assert callable(call)
    with pytest.raises(ClientRequestException) as refused:
        call()
    return refused.value.status_code, refused.value.error_code


HOSTILE_TAGS = [("a\x00", "v", "KMS.0406"), ("n\x1b", "v", "KMS.0406"), ("ok", "\x1b]0;x\x07", "KMS.0405"),
                ("ok", "a\nb", "KMS.0405")]  # fmt: skip


@pytest.mark.parametrize(("key", "value", "code"), HOSTILE_TAGS)
def test_tags_with_control_characters_are_refused(
    sdk: KmsClient, keys: dict[str, str], key: str, value: str, code: str
) -> None:
    key_id = keys["AES_256"]
    one = CreateKmsTagRequest(key_id=key_id, body=CreateKmsTagRequestBody(tag=TagItem(key=key, value=value)))
    assert refusal(lambda: sdk.create_kms_tag(one)) == (400, code)
    body = BatchCreateKmsTagsRequestBody(tags=[TagItem(key="fine", value="v"), TagItem(key=key, value=value)],
                                         action="create")  # fmt: skip
    batch = BatchCreateKmsTagsRequest(key_id=key_id, body=body)
    assert refusal(lambda: sdk.batch_create_kms_tags(batch)) == (400, code)
    assert sdk.show_kms_tags(ShowKmsTagsRequest(key_id=key_id)).tags in (None, [])  # nothing half-written


def listed(sdk: KmsClient, key_spec: str | None) -> set[str]:
    body = (
        ListKeysRequestBody(limit="1000") if key_spec is None else ListKeysRequestBody(limit="1000", key_spec=key_spec)
    )
    return set(sdk.list_keys(ListKeysRequest(body=body)).keys)


@pytest.mark.parametrize("key_spec", ["RSA_2048", "AES_256", None])
def test_list_keys_filters_by_key_spec(sdk: KmsClient, keys: dict[str, str], key_spec: str | None) -> None:
    assert listed(sdk, key_spec) == {keys[key_spec or "AES_256"]}


@pytest.mark.parametrize("key_spec", ["ECC_NIST_P256", "RSA_9999", "all"])
def test_list_keys_refuses_a_key_spec_it_does_not_offer(sdk: KmsClient, keys: dict[str, str], key_spec: str) -> None:
    request = ListKeysRequest(body=ListKeysRequestBody(limit="10", key_spec=key_spec))
    assert refusal(lambda: sdk.list_keys(request)) == (400, "KMS.0308")


def test_list_keys_pages_over_the_filtered_keys(sdk: KmsClient, keys: dict[str, str]) -> None:
    """The filter applies before paging: one RSA key is one page of one, counted as one, whatever else exists."""
    answer = sdk.list_keys(ListKeysRequest(body=ListKeysRequestBody(limit="1", key_spec="RSA_2048")))
    assert (answer.keys, answer.truncated, answer.total) == ([keys["RSA_2048"]], "false", 1)
    first = sdk.list_keys(ListKeysRequest(body=ListKeysRequestBody(limit="1", key_spec="ALL")))
    second = ListKeysRequestBody(limit="1", key_spec="ALL", marker=first.next_marker)
    rest = sdk.list_keys(ListKeysRequest(body=second))
    assert (first.truncated, rest.truncated, first.total) == ("true", "false", 2)
    assert set(first.keys + rest.keys) == set(keys.values())


def test_list_keys_all_lists_every_key(sdk: KmsClient, keys: dict[str, str]) -> None:
    assert listed(sdk, "ALL") == set(keys.values())


def test_the_providers_list_every_key(server: KMSServer, keys: dict[str, str]) -> None:
    """Provider kubekms/huaweicloud asks for key_spec ALL: against Huawei, asymmetric keys are listed too."""
    page = asyncio.run(_list_through_provider(server))
    assert {meta.key_id for meta in page} == set(keys.values())


async def _list_through_provider(server: KMSServer) -> list[KeyMetadata]:
    backend = await open_backend(server.backend_config())
    try:
        return list((await backend.list_keys(limit=100)).keys)
    finally:
        await backend.close()


@pytest.mark.parametrize("days", [29, 366])
def test_rotation_interval_outside_30_to_365_days_is_kms_3001(sdk: KmsClient, keys: dict[str, str], days: int) -> None:
    body = UpdateKeyRotationIntervalRequestBody(key_id=keys["AES_256"], rotation_interval=days)
    request = UpdateKeyRotationIntervalRequest(body=body)
    assert refusal(lambda: sdk.update_key_rotation_interval(request)) == (400, "KMS.3001")


@pytest.mark.parametrize("alias", ["gcp/global/ring/key/1", "gcp/x"])
def test_cloud_kms_aliases_cannot_be_planted(sdk: KmsClient, keys: dict[str, str], alias: str) -> None:
    """gcp/ names the Cloud KMS API's key versions: refused as a name Huawei reserves is (KMS.1101)."""
    create = CreateAliasRequest(body=CreateAliasRequestBody(key_id=keys["AES_256"], alias=alias))
    assert refusal(lambda: sdk.create_alias(create)) == (400, "KMS.1101")
    new_key = CreateKeyRequest(body=CreateKeyRequestBody(key_alias=alias))
    assert refusal(lambda: sdk.create_key(new_key)) == (400, "KMS.1101")
    assert listed(sdk, "ALL") == set(keys.values())
    pages = sdk.list_aliases(ListAliasesRequest(key_id=keys["AES_256"])).body or []
    assert [entry.alias for page in pages for entry in page.aliases or []] == ["s6b-aes_256"]
