"""The list filter parser on hostile text: any string is a filter that evaluates or an INVALID_ARGUMENT, never another
error (a crash would answer INTERNAL), and the evaluation of a parsed one never fails either."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from google.cloud import kms_v1

from kubekms.errors import InvalidArgument
from kubekms.server.gcp_filters import list_query

ALPHABET = ['labels', 'team', '.', '=', '!=', '<', '>', '<=', '>=', '=>', ':', ' ', '(', ')', '"', '\\', '-', 'NOT',
            'AND', 'OR', 'name', 'primary', 'state', 'algorithm', 'create_time', 'createTime', 'purpose', 'MAC',
            '2019-06-20T01:30:15Z', '30s', 'nan', 'inf', '1e999s', '\x00', 'é', 'destroy_scheduled_duration',
            'rotation_period', 'next_rotation_time', 'version_template', 'protection_level']  # fmt: skip


def _keys() -> list[kms_v1.CryptoKey]:
    with_primary = kms_v1.CryptoKey(name="projects/p/locations/global/keyRings/r/cryptoKeys/a", labels={"team": "x"},
                                    purpose=kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT,
                                    create_time=datetime(2026, 1, 1, tzinfo=UTC),
                                    rotation_period=timedelta(days=30),
                                    primary=kms_v1.CryptoKeyVersion(name="v", state=1))  # fmt: skip
    return [with_primary, kms_v1.CryptoKey(name="b", purpose=99)]  # 99: an enum number no name has


@pytest.mark.parametrize("seed", range(20))
def test_random_filters_and_orders_evaluate_or_are_refused(seed: int) -> None:
    chance = random.Random(seed)
    keys = _keys()
    for _ in range(300):
        text = "".join(chance.choice(ALPHABET) for _ in range(chance.randint(1, 12)))
        order = "".join(chance.choice([*ALPHABET, ",", " asc", " desc"]) for _ in range(chance.randint(0, 4)))
        for request in (SimpleNamespace(filter=text, order_by=""), SimpleNamespace(filter="", order_by=order)):
            try:
                query = list_query(request, kms_v1.CryptoKey)
            except InvalidArgument:
                continue
            query.apply(keys)  # no exception: a parsed query always evaluates
