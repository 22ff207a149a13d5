"""The real Huawei SDK's update_key_alias against our server (it was refused by name, KMS.0201): the key's key_alias
renamed, seen at once by describe-key, list-keys, list-aliases and the AWS wire's ListAliases (one aliases row);
Huawei's refusals; the permission update-key-alias (key policies: kms:UpdateAlias); the audit record; and the
kubekms provider (our REST client) making the same call over the wire."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from huaweicloudsdkkms.v2 import (
    DeleteKeyRequest,
    KmsClient,
    ListAliasesRequest,
    ListKeysRequest,
    ListKeysRequestBody,
    ScheduleKeyDeletionRequestBody,
    UpdateKeyAliasRequest,
    UpdateKeyAliasRequestBody,
)
from test_sdk_lifecycle import create_key, describe, expect_error
from test_v1_associate_alias import add_alias

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server
from kubekms.devenv.processes import wait_for
from kubekms.errors import NotFound
from kubekms.policies.actions import policy_action

KeyMaker = Callable[[str], str]
RENAMER_KEY = "renamer-own"  # the key principal "renamer" may use, by this alias
AWS = "proj1-on-aws"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    principals = [
        Principal("renamer", actions=("update-key-alias", "describe-key"), keys=(RENAMER_KEY,)),
        Principal("no-permission", actions=("update-key-description", "describe-key")),
        Principal(AWS, projects=("proj1",)),  # the AWS wire's account is a principal's only project
    ]
    with kms_server(tmp_path_factory.mktemp("kms"), project_id="proj1", principals=principals) as running:
        yield running


def rename(client: KmsClient, key_id: str, alias: str) -> tuple[str, str]:
    answer = client.update_key_alias(
        UpdateKeyAliasRequest(body=UpdateKeyAliasRequestBody(key_id=key_id, key_alias=alias))
    )
    return answer.key_info.key_id, answer.key_info.key_alias


def aliases_of(client: KmsClient, key_id: str) -> list[str]:
    (page,) = client.list_aliases(ListAliasesRequest(key_id=key_id)).body
    return [entity.alias for entity in page.aliases]


def listed_alias(client: KmsClient, key_id: str) -> str:
    body = ListKeysRequestBody(limit="1000", key_spec="ALL")
    details = client.list_keys(ListKeysRequest(body=body)).key_details
    (alias,) = [detail.key_alias for detail in details if detail.key_id == key_id]
    return str(alias)


def aws_aliases(server: KMSServer, key_id: str) -> list[str]:
    answer: dict[str, Any] = server.aws_client(AWS).list_aliases(KeyId=key_id)
    return [entry["AliasName"] for entry in answer["Aliases"]]


def test_a_rename_is_seen_at_once_on_every_read(server: KMSServer, client: KmsClient, unique: KeyMaker) -> None:
    old, new = unique("old-name"), unique("new-name")
    key_id = create_key(client, old)
    add_alias(client, key_id, unique("kept"))
    assert rename(client, key_id, new) == (key_id, new)
    assert describe(client, key_id).key_alias == new
    assert describe(client, new).key_id == key_id
    expect_error(lambda: describe(client, old), 404, "KMS.0207")  # the old name names nothing now
    assert listed_alias(client, key_id) == new
    listed = aliases_of(client, key_id)
    assert new in listed and old not in listed and len(listed) == 2
    aws = aws_aliases(server, key_id)
    assert f"alias/{new}" in aws and f"alias/{old}" not in aws
    assert server.aws_client(AWS).describe_key(KeyId=f"alias/{new}")["KeyMetadata"]["KeyId"] == key_id
    create_key(client, old)  # the old name is free for another key


def test_huawei_refusals(client: KmsClient, unique: KeyMaker) -> None:
    taken, mine = unique("taken"), unique("mine")
    create_key(client, taken)
    key_id = create_key(client, mine)
    expect_error(lambda: rename(client, key_id, taken), 400, "KMS.1104")  # in use by another key
    expect_error(lambda: rename(client, key_id, "bad name!"), 400, "KMS.1101")
    expect_error(lambda: rename(client, key_id, "svc/default"), 400, "KMS.1101")  # Huawei's default keys' suffix
    expect_error(lambda: rename(client, key_id, "gcp/l/r/k/1"), 400, "KMS.1101")  # reserved prefix
    expect_error(lambda: rename(client, key_id, ""), 400, "KMS.0204")
    expect_error(lambda: rename(client, "0d0466b0-e727-4d9c-b35d-f84bb474a37f", unique("x")), 404, "KMS.0207")
    client.delete_key(DeleteKeyRequest(body=ScheduleKeyDeletionRequestBody(key_id=key_id, pending_days="7")))
    expect_error(lambda: rename(client, key_id, unique("late")), 400, "KMS.0210")  # Huawei: not while pending
    assert describe(client, key_id).key_alias == mine


def test_the_same_name_again_is_answered_and_changes_nothing(client: KmsClient, unique: KeyMaker) -> None:
    name = unique("steady")
    key_id = create_key(client, name)
    assert rename(client, key_id, name) == (key_id, name)
    assert aliases_of(client, key_id) == [name]


def test_a_key_made_on_the_aws_wire_gets_its_first_key_alias(
    server: KMSServer, client: KmsClient, unique: KeyMaker
) -> None:
    key_id = server.aws_client(AWS).create_key()["KeyMetadata"]["KeyId"]
    assert describe(client, key_id).key_alias in ("", None)
    name = unique("first-name")
    assert rename(client, key_id, name) == (key_id, name)
    assert aws_aliases(server, key_id) == [f"alias/{name}"]


def test_the_permission_is_update_key_alias_evaluated_as_update_alias(
    server: KMSServer, client: KmsClient, sdk_client: Callable[..., KmsClient], unique: KeyMaker
) -> None:
    assert policy_action("update-key-alias") == "kms:UpdateAlias"
    other = create_key(client, unique("not-renamers"))
    own = create_key(client, RENAMER_KEY)
    expect_error(lambda: rename(sdk_client(server, "no-permission"), own, unique("x")), 403, "KMS.0307")
    expect_error(lambda: rename(sdk_client(server, "renamer"), other, unique("x")), 403, "KMS.0306")
    renamed = unique("renamed-by-renamer")
    renamer = sdk_client(server, "renamer")
    assert rename(renamer, own, renamed) == (own, renamed)
    # its key list named the key by the old alias: the renamed key is no longer one it may use
    expect_error(lambda: describe(renamer, own), 403, "KMS.0306")
    expect_error(lambda: rename(renamer, own, RENAMER_KEY), 403, "KMS.0306")
    assert rename(client, own, RENAMER_KEY) == (own, RENAMER_KEY)  # back, by the admin
    assert describe(renamer, own).key_id == own


def test_a_key_policy_denying_update_alias_refuses_the_rename(
    server: KMSServer, client: KmsClient, unique: KeyMaker
) -> None:
    name = unique("policed")
    key_id = create_key(client, name)
    deny = {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:UpdateAlias", "Resource": "*"}
    allow = {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}
    policy = json.dumps({"Version": "2012-10-17", "Statement": [allow, deny]})
    server.aws_client(AWS).put_key_policy(KeyId=key_id, PolicyName="default", Policy=policy)
    expect_error(lambda: rename(client, key_id, unique("denied")), 403, "KMS.0306")
    assert describe(client, key_id).key_alias == name


def test_the_rename_is_audited(server: KMSServer, client: KmsClient, unique: KeyMaker) -> None:
    key_id = create_key(client, unique("audited"))
    rename(client, key_id, unique("audited-renamed"))

    def audited() -> bool:
        records = [json.loads(line) for line in server.audit_log.read_text().splitlines()]
        return any((r["operation"], r["key_id"], r["result"]) == ("update-key-alias", key_id, "OK") for r in records)

    wait_for(audited, 10, "update-key-alias's audit record")


def test_the_kubekms_provider_renames_over_the_wire(server: KMSServer, client: KmsClient, unique: KeyMaker) -> None:
    old, new = unique("by-provider"), unique("by-provider-new")
    key_id = create_key(client, old)
    meta = server.call("update_key_alias", old, new)  # named by its alias: the provider sends Huawei its id
    assert (meta.key_id, meta.alias) == (key_id, new)
    assert describe(client, key_id).key_alias == new
    with pytest.raises(NotFound):
        server.call("describe_key", old)
