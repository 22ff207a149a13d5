"""Today's v1.0 wire (encrypt-data/decrypt-data, list-aliases filtered by permission) and the audit line's new
formatter (0ef34e9), attacked through Huawei's own SDK against a real server. ``lim`` may use only the key
aliased ``s8-a``; ``s8-b`` is another principal's key."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import pytest
import yaml
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkkms.v2 import (
    CancelGrantRequest,
    CancelSelfGrantRequest,
    CreateAliasRequest,
    CreateAliasRequestBody,
    CreateDatakeyRequest,
    CreateDatakeyRequestBody,
    CreateGrantRequest,
    CreateGrantRequestBody,
    CreateKeyRequest,
    CreateKeyRequestBody,
    DecryptDataRequest,
    DecryptDataRequestBody,
    EncryptDataRequest,
    EncryptDataRequestBody,
    KmsClient,
    ListAliasesRequest,
    ListGrantsRequest,
    ListGrantsRequestBody,
    RevokeGrantRequestBody,
)

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server
from kubekms.server.audit import verify_chain

PROJECT = "proj-s8v1"
LIM = Principal("lim", actions=("encrypt-data", "decrypt-data", "list-aliases", "describe-key"), keys=("s8-a",),
                projects=(PROJECT,))  # fmt: skip
# may retire grants (and manage those of its own key) only
RET = Principal("ret", actions=("retire-grant", "revoke-grant", "list-grants", "list-retirable-grants", "create-grant"),
                keys=("s8-a",), projects=(PROJECT,))  # fmt: skip
# may open small data (decrypt-data) on its key, not data keys (decrypt-datakey)
DATA_ONLY = Principal("data-only", actions=("decrypt-data",), keys=("s8-a",), projects=(PROJECT,))
HOSTILE_KEY = 'ключ"\\\n\u2028<script>'


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("s8v1"), project_id=PROJECT, principals=(LIM, RET, DATA_ONLY)) as running:
        yield running


def _sdk(server: KMSServer, name: str) -> KmsClient:
    credentials = yaml.safe_load(server.credentials_file(name).read_text())
    basic = BasicCredentials(credentials["access_key"], credentials["secret_key"], PROJECT)
    return KmsClient.new_builder().with_credentials(basic).with_endpoint(server.endpoint).build()


@pytest.fixture(scope="module")
def keys(server: KMSServer) -> dict[str, str]:
    admin = _sdk(server, "admin")
    made = {}
    for name in ("a", "b"):
        body = CreateKeyRequestBody(key_alias=f"s8-{name}")
        made[name] = admin.create_key(CreateKeyRequest(body=body)).key_info.key_id
    for alias, name in (("s8-a2", "a"), ("s8-b2", "b"), ("s8-b3", "b")):
        admin.create_alias(CreateAliasRequest(body=CreateAliasRequestBody(key_id=made[name], alias=alias)))
    return made


def _refusal(call: object) -> tuple[int, str]:
    assert callable(call)
    with pytest.raises(ClientRequestException) as raised:
        call()
    return raised.value.status_code, str(raised.value.error_code)


def test_decrypt_data_without_key_id_authorises_the_ciphertexts_key(server: KMSServer, keys: dict[str, str]) -> None:
    admin, lim = _sdk(server, "admin"), _sdk(server, "lim")
    theirs = admin.encrypt_data(EncryptDataRequest(body=EncryptDataRequestBody(key_id=keys["b"], plain_text="b's")))
    mine = lim.encrypt_data(EncryptDataRequest(body=EncryptDataRequestBody(key_id=keys["a"], plain_text="a's")))
    opened = lim.decrypt_data(DecryptDataRequest(body=DecryptDataRequestBody(cipher_text=mine.cipher_text)))
    assert opened.plain_text == "a's"
    blob = theirs.cipher_text
    assert _refusal(lambda: lim.decrypt_data(DecryptDataRequest(body=DecryptDataRequestBody(cipher_text=blob)))) == (
        403, "KMS.0306")  # fmt: skip
    # naming its own key does not open another key's ciphertext either
    named = DecryptDataRequestBody(cipher_text=blob, key_id=keys["a"])
    assert _refusal(lambda: lim.decrypt_data(DecryptDataRequest(body=named)))[0] == 400


def test_list_aliases_pages_over_only_what_the_caller_may_see(server: KMSServer, keys: dict[str, str]) -> None:
    lim, seen, marker = _sdk(server, "lim"), [], None
    for _ in range(5):
        page = lim.list_aliases(ListAliasesRequest(limit="1", marker=marker))
        entries = [entry.alias for body in page.body for entry in body.aliases]
        seen += entries
        marker = page.body[0].page_info.next_marker
        if not marker:
            break
        assert entries, "an empty page before the end tells the caller hidden aliases sat there"
    assert sorted(seen) == ["s8-a", "s8-a2"]
    forged = lim.list_aliases(ListAliasesRequest(limit="10", marker="2"))  # past the caller's own
    assert [entry.alias for body in forged.body for entry in body.aliases] == []


def test_audit_lines_are_json_dumps_bytes_and_the_chain_holds(server: KMSServer, keys: dict[str, str]) -> None:
    lim = _sdk(server, "lim")
    hostile = EncryptDataRequestBody(key_id=HOSTILE_KEY, plain_text="x")
    _refusal(lambda: lim.encrypt_data(EncryptDataRequest(body=hostile)))
    deadline = time.monotonic() + 20
    while True:  # the server flushes its audit buffer every few seconds
        lines = server.audit_log.read_bytes().splitlines() if server.audit_log.exists() else []
        if any(b"encrypt-data" in line and b"\\u043a" in line for line in lines):
            break
        assert time.monotonic() < deadline, "the refused encrypt-data never reached the audit log"
        time.sleep(0.1)
    for line in lines:
        assert line == json.dumps(json.loads(line), separators=(",", ":")).encode(), line
    report = verify_chain([server.audit_log])
    assert report.ok, [str(b) for b in report.breaks]


def test_grant_calls_on_another_key_tell_nothing_of_its_grants(server: KMSServer, keys: dict[str, str]) -> None:
    admin, ret = _sdk(server, "admin"), _sdk(server, "ret")

    def grant(**fields: str) -> str:
        body = CreateGrantRequestBody(key_id=keys["b"], grantee_principal="admin", operations=["encrypt-datakey"],
                                      **fields)  # fmt: skip
        return str(admin.create_grant(CreateGrantRequest(body=body)).grant_id)

    theirs, retirable = grant(), grant(retiring_principal="ret")
    unknown_key = "00000000-0000-0000-0000-000000000000"
    refusals = {
        "retire an existing grant": lambda: ret.cancel_self_grant(
            CancelSelfGrantRequest(body=RevokeGrantRequestBody(key_id=keys["b"], grant_id=theirs))),
        "retire no grant": lambda: ret.cancel_self_grant(
            CancelSelfGrantRequest(body=RevokeGrantRequestBody(key_id=keys["b"], grant_id="f" * 64))),
        "retire on no key": lambda: ret.cancel_self_grant(
            CancelSelfGrantRequest(body=RevokeGrantRequestBody(key_id=unknown_key, grant_id="f" * 64))),
        "revoke": lambda: ret.cancel_grant(
            CancelGrantRequest(body=RevokeGrantRequestBody(key_id=keys["b"], grant_id=theirs))),
        "list": lambda: ret.list_grants(ListGrantsRequest(body=ListGrantsRequestBody(key_id=keys["b"]))),
        "grant itself": lambda: ret.create_grant(CreateGrantRequest(body=CreateGrantRequestBody(
            key_id=keys["b"], grantee_principal="ret", operations=["decrypt-datakey"]))),
    }  # fmt: skip
    for name, call in refusals.items():
        assert _refusal(call) == (403, "KMS.0306"), name
    # its retiring principal retires the grant it was named in, on a key it may not otherwise use
    ret.cancel_self_grant(CancelSelfGrantRequest(body=RevokeGrantRequestBody(key_id=keys["b"], grant_id=retirable)))
    listed = admin.list_grants(ListGrantsRequest(body=ListGrantsRequestBody(key_id=keys["b"])))
    assert {g.grant_id for g in listed.grants} == {theirs}


def test_decrypt_data_does_not_open_a_data_key_for_a_principal_without_decrypt_datakey(
    server: KMSServer, keys: dict[str, str]
) -> None:
    admin, data_only = _sdk(server, "admin"), _sdk(server, "data-only")
    made = admin.create_datakey(CreateDatakeyRequest(body=CreateDatakeyRequestBody(key_id=keys["a"],
                                                                                 datakey_length="256")))  # fmt: skip
    blob = base64.b64encode(bytes.fromhex(made.cipher_text)).decode()
    with pytest.raises(ClientRequestException):
        opened = data_only.decrypt_data(DecryptDataRequest(body=DecryptDataRequestBody(cipher_text=blob)))
        assert not made.plain_text.startswith(base64.b64decode(opened.plain_text_base64).hex())  # the data key
