"""The real Huawei SDK against our server's v1.0 wire: list-aliases pages as Huawei's does, and a tag key holding an
encoded "/" can be deleted by its path while no other path changes meaning (dot segments, double encoding)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import quote

import pytest
import requests
from huaweicloudsdkkms.v2 import (
    CreateAliasRequest,
    CreateAliasRequestBody,
    CreateKmsTagRequest,
    CreateKmsTagRequestBody,
    DeleteTagRequest,
    KmsClient,
    ListAliasesRequest,
    ListKeysRequest,
    ListKeysRequestBody,
    ShowKmsTagsRequest,
    TagItem,
)
from test_sdk_lifecycle import create_key, expect_error

from kubekms.devenv.kmsserver import KMSServer
from kubekms.providers import Credentials
from kubekms.wire.signing import sign_headers

KeyMaker = Callable[[str], str]


def aliased_key(client: KmsClient, unique: KeyMaker, count: int) -> tuple[str, list[str]]:
    first = unique("paged")
    key_id = create_key(client, first)
    extra = [unique("paged-more") for _ in range(count - 1)]
    for alias in extra:
        client.create_alias(CreateAliasRequest(body=CreateAliasRequestBody(key_id=key_id, alias=alias)))
    return key_id, [first, *extra]


def test_list_aliases_pages_with_limit_and_marker(client: KmsClient, unique: KeyMaker) -> None:
    key_id, aliases = aliased_key(client, unique, 5)
    seen: list[str] = []
    marker: str | None = None
    counts: list[int] = []
    while True:
        (page,) = client.list_aliases(ListAliasesRequest(key_id=key_id, limit="2", marker=marker)).body
        seen += [entity.alias for entity in page.aliases]
        counts.append(page.page_info.current_count)
        if not page.page_info.next_marker:
            break
        marker = page.page_info.next_marker
    assert counts == [2, 2, 1]
    assert sorted(seen) == sorted(aliases) and len(seen) == len(set(seen))
    (whole,) = client.list_aliases(ListAliasesRequest(key_id=key_id)).body
    assert whole.page_info.current_count == 5 and whole.page_info.next_marker == ""
    (past,) = client.list_aliases(ListAliasesRequest(key_id=key_id, marker="99")).body
    assert past.aliases == [] and past.page_info.next_marker == ""


@pytest.mark.parametrize(
    ("limit", "marker", "code"),
    [("0", None, "KMS.1601"), ("1001", None, "KMS.1601"), ("x", None, "KMS.1601"), (None, "-1", "KMS.1602"),
     (None, "abc", "KMS.1602")],
)  # fmt: skip
def test_list_aliases_refuses_a_bad_limit_or_marker_as_list_keys_does(
    client: KmsClient, unique: KeyMaker, limit: str | None, marker: str | None, code: str
) -> None:
    key_id = create_key(client, unique("paged-bad"))
    expect_error(lambda: client.list_aliases(ListAliasesRequest(key_id=key_id, limit=limit, marker=marker)), 400, code)
    body = ListKeysRequestBody(limit=limit, marker=marker)
    expect_error(lambda: client.list_keys(ListKeysRequest(body=body)), 400, code)


def tags_of(client: KmsClient, key_id: str) -> dict[str, str]:
    return {tag.key: tag.value for tag in client.show_kms_tags(ShowKmsTagsRequest(key_id=key_id)).tags}


def signed(server: KMSServer, method: str, path: str) -> requests.Response:
    url = server.endpoint + path
    headers = sign_headers(method, url, {"Content-Type": "application/json"}, b"",
                           Credentials.from_file(server.credentials_file("admin")))  # fmt: skip
    return requests.request(method, url, headers=headers, timeout=10)


def test_a_tag_key_holding_a_slash_is_deleted_by_its_path(
    server: KMSServer, client: KmsClient, unique: KeyMaker
) -> None:
    key_id = create_key(client, unique("slashed"))
    for tag_key in ("team/payments", "a%2Fb", "..", "plain"):
        body = CreateKmsTagRequestBody(tag=TagItem(key=tag_key, value="v"))
        client.create_kms_tag(CreateKmsTagRequest(key_id=key_id, body=body))

    client.delete_tag(DeleteTagRequest(key_id=key_id, key="team/payments"))  # the SDK sends team%2Fpayments
    assert set(tags_of(client, key_id)) == {"a%2Fb", "..", "plain"}
    # double encoding: %252F names the literal text "%2F", never a slash
    assert signed(server, "DELETE", f"/v1.0/{server.project_id}/kms/{key_id}/tags/{quote('a%2Fb', safe='')}").ok
    assert set(tags_of(client, key_id)) == {"..", "plain"}
    assert signed(server, "DELETE", f"/v1.0/{server.project_id}/kms/{key_id}/tags/%2E%2E").ok  # a tag key, no more
    assert set(tags_of(client, key_id)) == {"plain"}


@pytest.mark.parametrize(
    ("tail", "status"),
    [("{key}/tags%2Fplain", 400), ("{key}%2Ftags/plain", 400), ("{key}/tags/plain/extra", 400),
     ("%2E%2E/tags/plain", 404), ("{key}/%2E%2E/tags/plain", 400), ("resource_instances%2Faction", 400),
     ("{key}/tags/action%2Fx", 200)],  # the last: the tag key "action/x" (none such: nothing to delete)
)  # fmt: skip
def test_an_encoded_slash_or_dot_segment_never_reroutes(
    server: KMSServer, client: KmsClient, unique: KeyMaker, tail: str, status: int
) -> None:
    key_id = create_key(client, unique("reroute"))
    client.create_kms_tag(CreateKmsTagRequest(key_id=key_id, body=CreateKmsTagRequestBody(tag=TagItem("plain", "v"))))
    answer = signed(server, "DELETE", f"/v1.0/{server.project_id}/kms/{tail.format(key=key_id)}")
    assert answer.status_code == status, answer.text
    assert tags_of(client, key_id) == {"plain": "v"}
