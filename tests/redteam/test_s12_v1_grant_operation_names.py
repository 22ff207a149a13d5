"""v1.0 create-grant keeps Huawei's operation names apart. A grant naming only ``decrypt-datakey`` was stored as
the keystore's (AWS's) ``Decrypt``, which ``decrypt-data`` needs as well: its grantee opened encrypt-data's
ciphertexts of the key, which the grant never named (the split test_s9_v1_marker keeps for principals' action
lists), and list-grants answered both names. Found by H6 (session 12); a grant now keeps the names it was made
with (GrantTerms.permissions) and allows only calls of those."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server
from kubekms.providers import Credentials
from kubekms.wire.signing import sign_headers

PROJECT = "proj-s12gn"
# may call both operations, but on no key of its own: only what a grant allows on a key
GRANTEE = Principal("dk-grantee", actions=("decrypt-datakey", "decrypt-data"), keys=(), projects=(PROJECT,))


def v1_call(server: KMSServer, principal: str, path: str, body: Any) -> tuple[int, Any]:
    """One v1.0 POST signed SDK-HMAC-SHA256 as ``principal`` with ``body`` as JSON: (status, JSON answer)."""
    data, url = json.dumps(body).encode(), f"{server.endpoint}/v1.0/{PROJECT}/kms/{path}"
    headers = sign_headers("POST", url, {"Content-Type": "application/json"}, data,
                           Credentials.from_file(server.credentials_file(principal)))  # fmt: skip
    answer = requests.post(url, data=data, headers=headers, timeout=20)
    return answer.status_code, answer.json()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("s12gn"), project_id=PROJECT, principals=(GRANTEE,)) as running:
        yield running


def test_a_decrypt_datakey_grant_opens_data_keys(server: KMSServer) -> None:
    key_id = v1_call(server, "admin", "create-key", {"key_alias": "s12gn-dk"})[1]["key_info"]["key_id"]
    grant = {"key_id": key_id, "grantee_principal": GRANTEE.name, "operations": ["decrypt-datakey"]}
    assert v1_call(server, "admin", "create-grant", grant)[0] == 200
    made = v1_call(server, "admin", "create-datakey", {"key_id": key_id})[1]
    body = {"key_id": key_id, "cipher_text": made["cipher_text"], "datakey_cipher_length": "32"}
    status, opened = v1_call(server, GRANTEE.name, "decrypt-datakey", body)
    assert (status, opened.get("data_key")) == (200, made["plain_text"])


def test_a_decrypt_datakey_grant_does_not_open_encrypt_data(server: KMSServer) -> None:
    key_id = v1_call(server, "admin", "create-key", {"key_alias": "s12gn-data"})[1]["key_info"]["key_id"]
    grant = {"key_id": key_id, "grantee_principal": GRANTEE.name, "operations": ["decrypt-datakey"]}
    assert v1_call(server, "admin", "create-grant", grant)[0] == 200
    sealed = v1_call(server, "admin", "encrypt-data", {"key_id": key_id, "plain_text": "encrypt-data's secret"})[1]
    body = {"key_id": key_id, "cipher_text": sealed["cipher_text"]}
    status, answer = v1_call(server, GRANTEE.name, "decrypt-data", body)
    assert status == 403, answer
    assert "plain_text" not in answer


def test_list_grants_answers_the_operations_the_grant_named(server: KMSServer) -> None:
    key_id = v1_call(server, "admin", "create-key", {"key_alias": "s12gn-list"})[1]["key_info"]["key_id"]
    grant = {"key_id": key_id, "grantee_principal": GRANTEE.name, "operations": ["decrypt-datakey", "describe-key"]}
    assert v1_call(server, "admin", "create-grant", grant)[0] == 200
    status, answer = v1_call(server, "admin", "list-grants", {"key_id": key_id})
    assert status == 200 and [g["operations"] for g in answer["grants"]] == [["decrypt-datakey", "describe-key"]]
