"""The wire codec in both directions: what the server writes, the client reads back unchanged."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest

from kubekms.backend import DataKey, KeyMetadata, KeyState, Quota, RotationStatus
from kubekms.errors import (
    AccessDenied,
    Disabled,
    InvalidArgument,
    InvalidCiphertext,
    KMSError,
    NotFound,
    PendingDeletion,
    Reason,
    Unauthenticated,
    Unavailable,
)
from kubekms.wire.v1 import answers as v1_answers
from kubekms.wire.v1 import client as v1_client
from kubekms.wire.v1 import errors as v1_errors
from kubekms.wire.v1 import fields as v1_fields

META = KeyMetadata(
    key_id="0d0466b0-e727-4d9c-b35d-f84bb474a37f",
    alias="team/app",
    description="app key",
    key_spec="AES_256",
    key_usage="ENCRYPT_DECRYPT",
    state=KeyState.PENDING_DELETION,
    created_at=datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC),
    current_version=3,
    rotation_enabled=True,
    rotation_interval_days=90,
    last_rotation_at=datetime(2026, 2, 1, tzinfo=UTC),
    deletion_date=datetime(2026, 3, 1, tzinfo=UTC),
    project_id="proj1",
)


def test_key_details_are_all_strings_in_milliseconds_and_round_trip() -> None:
    details = v1_answers.key_details(META)
    assert all(isinstance(value, str) for value in details.values())
    assert details["creation_date"] == "1767323045678"
    assert details["key_state"] == "4"
    assert details["key_rotation_enabled"] == "true"
    assert v1_answers.key_metadata_from_wire(json.loads(json.dumps(details))) == META


def test_key_details_without_a_deletion_date_send_an_empty_string() -> None:
    details = v1_answers.key_details(META.__class__(**{**META.__dict__, "deletion_date": None}))
    assert details["scheduled_deletion_date"] == ""


def test_cloud_key_details_without_our_extension_fields_decode() -> None:
    details = {
        k: v for k, v in v1_answers.key_details(META).items() if k not in ("current_version", "rotation_interval")
    }
    meta = v1_answers.key_metadata_from_wire(details)
    assert meta.current_version == 1 and meta.rotation_interval_days == 0


@pytest.mark.parametrize("value", [256, "256"])
def test_numbers_are_accepted_as_ints_and_strings(value) -> None:
    assert v1_fields.data_key_length_from_request(v1_fields.RequestFields({"datakey_length": value})) == 32


@pytest.mark.parametrize(
    ("body", "expected"),
    [({}, 32), ({"key_spec": "AES_128"}, 16), ({"key_spec": "AES_128", "datakey_length": "512"}, 64)],
)
def test_create_datakey_length_is_bits_and_wins_over_spec(body, expected) -> None:
    assert v1_fields.data_key_length_from_request(v1_fields.RequestFields(body)) == expected


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"datakey_length": "12"}, "KMS.1903"),
        ({"datakey_length": "0"}, "KMS.1901"),
        ({"datakey_length": "8200"}, "KMS.1901"),
        ({"datakey_length": "abc"}, "KMS.1901"),
        ({"datakey_length": True}, "KMS.1901"),
        ({"datakey_length": 25.6}, "KMS.1901"),
        ({"key_spec": "SM4"}, "KMS.1902"),
    ],
)
def test_bad_data_key_lengths_have_their_codes(body, code) -> None:
    with pytest.raises(InvalidArgument) as caught:
        v1_fields.data_key_length_from_request(v1_fields.RequestFields(body))
    assert caught.value.code == code


@pytest.mark.parametrize(("bits", "code"), [("12", "KMS.1802"), ("0", "KMS.1801"), (None, "KMS.0204")])
def test_bad_random_lengths_have_their_codes(bits, code) -> None:
    with pytest.raises(InvalidArgument) as caught:
        v1_fields.random_length_from_request(v1_fields.RequestFields({"random_data_length": bits}))
    assert caught.value.code == code


def test_encrypt_datakey_request_round_trips_through_the_server_parser() -> None:
    dek = bytes(range(32))
    body = v1_client.encrypt_datakey_request("k", dek, b"ctx")
    fields = v1_fields.RequestFields(json.loads(json.dumps(body)))
    assert v1_fields.data_key_plaintext_from_request(fields) == dek
    assert fields.aad() == b"ctx"


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda b: {**b, "plain_text": "zz"}, "KMS.2101"),
        (lambda b: {**b, "datakey_plain_length": "31"}, "KMS.2104"),
        (lambda b: {**b, "datakey_plain_length": "0"}, "KMS.2102"),
        (lambda b: {**b, "plain_text": "00" + b["plain_text"][2:]}, "KMS.2103"),
        (lambda b: {k: v for k, v in b.items() if k != "plain_text"}, "KMS.0204"),
    ],
)
def test_bad_encrypt_datakey_requests_have_their_codes(mutate, code) -> None:
    body = mutate(v1_client.encrypt_datakey_request("k", b"\x01" * 32, b""))
    with pytest.raises(InvalidArgument) as caught:
        v1_fields.data_key_plaintext_from_request(v1_fields.RequestFields(body))
    assert caught.value.code == code


def test_aad_from_either_field_and_encryption_context_is_order_independent() -> None:
    assert v1_fields.RequestFields({"additional_authenticated_data": "abc"}).aad() == b"abc"
    one = v1_fields.RequestFields({"encryption_context": {"a": "1", "b": "2"}}).aad()
    two = v1_fields.RequestFields({"encryption_context": {"b": "2", "a": "1"}}).aad()
    assert one == two and one != b""
    assert v1_fields.RequestFields({}).aad() == b""
    for bad in ({"additional_authenticated_data": "x" * 129}, {"encryption_context": {"a": 1}}):
        with pytest.raises(InvalidArgument) as caught:
            v1_fields.RequestFields(bad).aad()
        assert caught.value.code == "KMS.0208"


@pytest.mark.parametrize(
    ("raw", "code"), [(b"{not json", "KMS.0202"), (b"[1,2]", "KMS.0202"), (b"\xff\xfe", "KMS.0202")]
)
def test_malformed_bodies(raw, code) -> None:
    with pytest.raises(InvalidArgument) as caught:
        v1_fields.parse_json_object(raw)
    assert v1_errors.error_code(caught.value) == code


@pytest.mark.parametrize(
    ("error", "status", "cls"),
    [
        (NotFound("no such key"), 404, NotFound),
        (Disabled("off"), 400, Disabled),
        (PendingDeletion("going"), 400, PendingDeletion),
        (InvalidCiphertext("bad"), 400, InvalidCiphertext),
        (InvalidArgument("pending days", code="KMS.1401"), 400, InvalidArgument),
        (Unauthenticated("sig"), 401, Unauthenticated),
        (AccessDenied("no"), 403, AccessDenied),
        (Unavailable("down"), 503, Unavailable),
        (KMSError("boom"), 500, Unavailable),
        (InvalidArgument("method", code="KMS.0215"), 405, InvalidArgument),
    ],
)
def test_errors_round_trip(error: KMSError, status: int, cls: type[KMSError]) -> None:
    assert v1_errors.error_status(error) == status
    decoded = v1_errors.error_from_wire(status, json.dumps(v1_errors.error_body(error)).encode())
    assert type(decoded) is cls
    assert v1_errors.error_code(decoded) == v1_errors.error_code(error) and decoded.message == error.message
    assert decoded.reason is error.reason or error.code is not None


def test_an_unparsable_error_body_falls_back_on_the_status() -> None:
    assert isinstance(v1_errors.error_from_wire(502, b"<html>bad gateway</html>"), Unavailable)
    assert isinstance(v1_errors.error_from_wire(404, b""), NotFound)


def test_data_key_answers_round_trip() -> None:
    key = DataKey(key_id="k", key_version=0, ciphertext=b"\x00\x01", plaintext=b"\x02" * 16)
    assert (
        v1_answers.data_key_from_wire(v1_answers.data_key_answer(key, with_plaintext=True), requested_key_id="k") == key
    )
    without = v1_answers.data_key_from_wire(v1_answers.data_key_answer(key, with_plaintext=False), requested_key_id="k")
    assert without.plaintext is None
    answer = v1_answers.decrypted_data_key_answer(b"\x07" * 32)
    assert answer["datakey_dgst"] == hashlib.sha256(b"\x07" * 32).hexdigest()
    assert v1_answers.data_key_plaintext_from_wire(answer) == b"\x07" * 32
    with pytest.raises(InvalidCiphertext):
        v1_answers.data_key_plaintext_from_wire({**answer, "datakey_dgst": "00" * 32})


def test_rotation_quotas_tags_aliases_round_trip() -> None:
    status = RotationStatus(True, 30, datetime(2026, 1, 1, tzinfo=UTC), 4, None)
    assert v1_answers.rotation_status_from_wire(v1_answers.rotation_status(status)) == status
    quotas = [Quota("CMK", 3, 1000)]
    assert v1_answers.quotas_from_wire(v1_answers.quotas_answer(quotas)) == quotas
    assert v1_answers.tags_from_answer(v1_answers.tags_answer({"a": "1", "b": ""})) == {"a": "1", "b": ""}
    assert v1_answers.aliases_from_wire(v1_answers.aliases_answer([("k", "x"), ("k", "y")], "p")) == ["x", "y"]


@pytest.mark.parametrize(
    ("wire", "state"),
    [
        ("1", KeyState.PENDING_ACTIVATION),
        ("2", KeyState.ENABLED),
        ("3", KeyState.DISABLED),
        ("4", KeyState.PENDING_DELETION),
        ("5", KeyState.PENDING_IMPORT),
        ("7", KeyState.PENDING_ACTIVATION),  # frozen by the cloud: unusable, and not the owner's to enable
        ("destroyed", KeyState.DESTROYED),  # our server's, after the pending window
    ],
)
def test_every_documented_key_state_decodes(wire: str, state: KeyState) -> None:
    details = {**v1_answers.key_details(META), "key_state": wire}
    assert v1_answers.key_metadata_from_wire(details).state is state


@pytest.mark.parametrize("wire", ["6", "0", "", "frozen", "²", "7 "])
def test_an_undocumented_key_state_is_refused(wire: str) -> None:
    with pytest.raises(InvalidArgument):
        v1_answers.key_metadata_from_wire({**v1_answers.key_details(META), "key_state": wire})


@pytest.mark.parametrize("value", ["7", "destroyed", "²", "22", 2])
def test_list_keys_filters_by_request_states_only(value: object) -> None:
    with pytest.raises(InvalidArgument):
        v1_fields.key_state_filter_from_request(v1_fields.RequestFields({"key_state": value}))
    assert v1_fields.key_state_filter_from_request(v1_fields.RequestFields({"key_state": "3"})) is KeyState.DISABLED


def test_every_reason_has_a_v1_code_and_codes_read_back_as_their_reason() -> None:
    """The v1.0 wire answers every reason with a code; a server's code reads back as the same reason."""
    assert set(v1_errors.CODE_BY_REASON) == set(Reason)
    for reason, code in v1_errors.CODE_BY_REASON.items():
        decoded = v1_errors.error_from_wire(400, json.dumps({"error": {"error_code": code, "error_msg": "m"}}).encode())
        assert decoded.code == code
        assert decoded.reason is reason or v1_errors.CODE_BY_REASON[decoded.reason] == code
