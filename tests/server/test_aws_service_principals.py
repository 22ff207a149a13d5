"""Request members newer SDKs send that this server has no counterpart for: refused or answered as AWS would for
what exists here, never ignored.

Service-principal grants (CreateGrant GranteeServicePrincipal / RetiringServicePrincipal, the ListGrants and
ListRetirableGrants filters) and keys shared through RAM (ListKeys ResourceOwners). Before, the server ignored
them: a ListGrants filtered on a service principal listed every grant of the key (a script revoking what it lists
revoked them all), ListKeys for OTHER_ACCOUNTS_VIA_RAM listed the account's own keys as if shared, and a grant
asked with a RetiringServicePrincipal was made without it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import botocore.exceptions
import pytest

from kubekms.devenv.kmsserver import KMSServer, kms_server

ADMIN_ARN = "arn:aws:iam::default:user/admin"
SERVICE = "logs.eu-west-1.amazonaws.com"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("kms-service-principals")) as running:
        yield running


@pytest.fixture(scope="module")
def kms(server: KMSServer) -> Any:
    return server.aws_client(validate=False)  # the model's "one of" rules are the server's to enforce here


def code_of(call: Callable[..., Any], **fields: Any) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call(**fields)
    return str(raised.value.response["Error"]["Code"])


def test_a_grant_to_or_retired_by_a_service_principal_is_refused(kms: Any) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    decrypt = {"KeyId": key_id, "Operations": ["Decrypt"]}
    assert code_of(kms.create_grant, GranteeServicePrincipal=SERVICE, **decrypt) == "ValidationException"
    assert (
        code_of(kms.create_grant, GranteePrincipal=ADMIN_ARN, RetiringServicePrincipal=SERVICE, **decrypt)
        == "ValidationException"
    )
    assert kms.list_grants(KeyId=key_id)["Grants"] == []
    kms.create_grant(GranteePrincipal=ADMIN_ARN, RetiringPrincipal=ADMIN_ARN, **decrypt)  # still fine


def test_grant_lists_filtered_on_a_service_principal_are_refused_not_unfiltered(kms: Any) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    kms.create_grant(KeyId=key_id, GranteePrincipal=ADMIN_ARN, RetiringPrincipal=ADMIN_ARN, Operations=["Decrypt"])
    assert len(kms.list_grants(KeyId=key_id)["Grants"]) == 1
    assert code_of(kms.list_grants, KeyId=key_id, GranteeServicePrincipal=SERVICE) == "ValidationException"
    assert code_of(kms.list_retirable_grants, RetiringServicePrincipal=SERVICE) == "ValidationException"
    assert len(kms.list_retirable_grants(RetiringPrincipal=ADMIN_ARN)["Grants"]) >= 1


def test_list_keys_by_resource_owner(kms: Any) -> None:
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]

    def listed(**fields: Any) -> list[str]:
        return [key["KeyId"] for key in kms.list_keys(Limit=1000, **fields)["Keys"]]

    assert key_id in listed()
    assert key_id in listed(ResourceOwners=["SELF"])
    assert key_id in listed(ResourceOwners=["SELF", "OTHER_ACCOUNTS_VIA_RAM"])
    assert kms.list_keys(ResourceOwners=["OTHER_ACCOUNTS_VIA_RAM"])["Keys"] == []  # nothing is shared across accounts
    assert kms.list_keys(ResourceOwners=["OTHER_ACCOUNTS_VIA_RAM"])["Truncated"] is False
    assert code_of(kms.list_keys, ResourceOwners=["EVERYONE"]) == "ValidationException"
    assert code_of(kms.list_keys, ResourceOwners=[]) == "ValidationException"
