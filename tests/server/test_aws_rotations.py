"""ListKeyRotations through boto3 against a real kubekms server: each rotation's date and type, AWS's paging."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import botocore.exceptions
import pytest

from kubekms.devenv.kmsserver import KMSServer, kms_server
from kubekms.keystore import Keystore

AHEAD_DAYS = 91  # past the shortest rotation period AWS allows (90 days)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("kms-rotations"), project_id="default") as running:
        yield running


def rotate_automatically(server: KMSServer) -> None:
    """Fault injection: a rotation period lasts at least 90 days, so the server's own keystore code runs its
    maintenance pass here, on the server's database (SQLite, shared with the running server), with a clock ahead."""
    store = Keystore(server.state_dir / "keystore" / server.project_id, clock=lambda: time.time() + AHEAD_DAYS * 86400)
    try:
        assert store.run_due_work().rotated
    finally:
        store.close()


def test_rotations_carry_their_date_type_and_state_and_leave_out_the_original_material(server: KMSServer) -> None:
    kms = server.aws_client()
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    assert kms.list_key_rotations(KeyId=key_id)["Rotations"] == []
    started = datetime.now(UTC) - timedelta(seconds=5)
    kms.enable_key_rotation(KeyId=key_id, RotationPeriodInDays=90)
    kms.rotate_key_on_demand(KeyId=key_id)
    rotate_automatically(server)
    kms.rotate_key_on_demand(KeyId=key_id)

    rotations = kms.list_key_rotations(KeyId=key_id)["Rotations"]
    assert [entry["RotationType"] for entry in rotations] == ["ON_DEMAND", "AUTOMATIC", "ON_DEMAND"]
    assert [entry["KeyMaterialState"] for entry in rotations] == ["NON_CURRENT", "NON_CURRENT", "CURRENT"]
    assert {entry["KeyId"] for entry in rotations} == {kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]}
    on_demand, automatic, latest = (entry["RotationDate"] for entry in rotations)
    assert started <= on_demand <= latest < started + timedelta(minutes=5)
    assert automatic >= started + timedelta(days=AHEAD_DAYS)

    everything = kms.list_key_rotations(KeyId=key_id, IncludeKeyMaterial="ALL_KEY_MATERIAL")["Rotations"]
    assert len(everything) == 4 and everything[1:] == rotations
    assert "RotationDate" not in everything[0] and "RotationType" not in everything[0]
    assert everything[0]["KeyMaterialState"] == "NON_CURRENT"


def test_rotations_page_as_aws_does(server: KMSServer) -> None:
    kms = server.aws_client()
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    for _ in range(3):
        kms.rotate_key_on_demand(KeyId=key_id)
    first = kms.list_key_rotations(KeyId=key_id, Limit=2)
    assert len(first["Rotations"]) == 2 and first["Truncated"] is True
    rest = kms.list_key_rotations(KeyId=key_id, Limit=2, Marker=first["NextMarker"])
    assert len(rest["Rotations"]) == 1 and rest["Truncated"] is False and "NextMarker" not in rest
    dates = [entry["RotationDate"] for entry in first["Rotations"] + rest["Rotations"]]
    assert dates == sorted(dates)
    paginated = kms.get_paginator("list_key_rotations").paginate(KeyId=key_id, PaginationConfig={"PageSize": 1})
    assert sum(len(page["Rotations"]) for page in paginated) == 3
    assert len(kms.list_key_rotations(KeyId=key_id, Limit=1000)["Rotations"]) == 3

    unchecked = server.aws_client(validate=False)
    for fields in ({"Limit": 1001}, {"Limit": 0}, {"IncludeKeyMaterial": "SOME"}, {"Marker": "x"}):
        with pytest.raises(botocore.exceptions.ClientError) as raised:
            unchecked.list_key_rotations(KeyId=key_id, **fields)
        assert raised.value.response["Error"]["Code"] in ("ValidationException", "InvalidMarkerException"), fields
