"""The real Huawei SDK against our server's v1.0 wire: list-aliases pages as Huawei's does (one key's, or without
key_id the whole project's), and a tag key holding an encoded "/" can be deleted by its path while no other path
changes meaning (dot segments, double encoding)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
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

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server
from kubekms.providers import Credentials
from kubekms.wire.signing import sign_headers

KeyMaker = Callable[[str], str]
ONE_KEY = "one-key-only"  # the alias principal "one-key" is limited to


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("kms"), project_id="proj1",
                    principals=[Principal("one-key", keys=(ONE_KEY,))]) as running:  # fmt: skip
        yield running


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


def all_aliases(client: KmsClient, limit: str) -> dict[str, str]:
    """alias -> key id, every page of list-aliases without key_id."""
    found: dict[str, str] = {}
    marker: str | None = None
    while True:
        (page,) = client.list_aliases(ListAliasesRequest(limit=limit, marker=marker)).body
        assert page.page_info.current_count == len(page.aliases) <= int(limit)
        for entity in page.aliases:
            assert entity.alias not in found, "an alias listed twice across pages"
            found[entity.alias] = entity.key_id
        if not page.page_info.next_marker:
            return found
        marker = page.page_info.next_marker


def test_list_aliases_without_key_id_pages_every_alias_of_the_project(client: KmsClient, unique: KeyMaker) -> None:
    first_id, first_aliases = aliased_key(client, unique, 3)
    second_id, second_aliases = aliased_key(client, unique, 2)
    found = all_aliases(client, "2")
    assert {alias: found.get(alias) for alias in first_aliases} == dict.fromkeys(first_aliases, first_id)
    assert {alias: found.get(alias) for alias in second_aliases} == dict.fromkeys(second_aliases, second_id)
    assert found == all_aliases(client, "1000")  # the same set, whatever the page size
    (entity, *_) = client.list_aliases(ListAliasesRequest(limit="1")).body[0].aliases
    assert entity.alias_urn == f"kms:proj1:alias/{entity.alias}" and entity.domain_id == "proj1"


def test_a_principal_limited_to_some_keys_lists_only_its_keys_aliases(
    server: KMSServer, client: KmsClient, sdk_client: Callable[..., KmsClient], unique: KeyMaker
) -> None:
    own_id = create_key(client, ONE_KEY)
    second = unique("one-key-second")
    client.create_alias(CreateAliasRequest(body=CreateAliasRequestBody(key_id=own_id, alias=second)))
    other_id, _ = aliased_key(client, unique, 2)  # aliases of a key it may not see
    limited = sdk_client(server, "one-key")
    # without key_id: the aliases of the keys it may list, the others left out (as the Cloud KMS lists do),
    # paged over what it may see
    assert all_aliases(limited, "1") == {ONE_KEY: own_id, second: own_id}
    assert other_id in all_aliases(client, "1000").values()  # the admin still sees every key's
    (page,) = limited.list_aliases(ListAliasesRequest(key_id=own_id)).body
    assert [(entity.key_id, entity.alias) for entity in page.aliases] == [(own_id, ONE_KEY), (own_id, second)]
    expect_error(lambda: limited.list_aliases(ListAliasesRequest(key_id=other_id)), 403, "KMS.0306")


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


def test_a_tag_key_holding_a_slash_is_deleted_by_a_path_holding_it_raw(
    server: KMSServer, client: KmsClient, unique: KeyMaker
) -> None:
    """Huawei's Go and Java SDKs put a path parameter in the path as it is: ``/`` stays a real slash."""
    key_id = create_key(client, unique("raw-slash"))
    for tag_key in ("kubekms.io/owner", "a/b/c", "action", "plain"):
        client.create_kms_tag(
            CreateKmsTagRequest(key_id=key_id, body=CreateKmsTagRequestBody(tag=TagItem(tag_key, "v")))
        )
    for tag_key in ("kubekms.io/owner", "a/b/c", "action"):  # "action": a tag key, on DELETE, not batch-key-tags
        answer = signed(server, "DELETE", f"/v1.0/{server.project_id}/kms/{key_id}/tags/{tag_key}")
        assert answer.ok, answer.text
    assert tags_of(client, key_id) == {"plain": "v"}


@pytest.mark.parametrize(
    ("tail", "status"),
    [("{key}/tags%2Fplain", 400), ("{key}%2Ftags/plain", 400), ("{key}/tags/plain/extra", 200),
     ("%2E%2E/tags/plain", 404), ("{key}/%2E%2E/tags/plain", 400), ("resource_instances%2Faction", 400),
     ("{key}/tags/action%2Fx", 200), ("{key}/tags/", 400)],  # 200s: the tag keys "plain/extra", "action/x" (none)
)  # fmt: skip
def test_an_encoded_slash_or_dot_segment_never_reroutes(
    server: KMSServer, client: KmsClient, unique: KeyMaker, tail: str, status: int
) -> None:
    key_id = create_key(client, unique("reroute"))
    client.create_kms_tag(CreateKmsTagRequest(key_id=key_id, body=CreateKmsTagRequestBody(tag=TagItem("plain", "v"))))
    answer = signed(server, "DELETE", f"/v1.0/{server.project_id}/kms/{tail.format(key=key_id)}")
    assert answer.status_code == status, answer.text
    assert tags_of(client, key_id) == {"plain": "v"}
