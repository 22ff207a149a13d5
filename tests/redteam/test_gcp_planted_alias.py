"""A keystore alias ``gcp/<location>/<ring>/<key>/<version>`` planted by another principal (CreateAlias on a key
of theirs, through the AWS wire) must not make their key the next version of someone's crypto key: it was adopted,
and the victim then encrypted under a key the planter decrypts. A crash's leftover is still adopted."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import botocore.exceptions
import grpc
import pytest
from google.cloud import kms_v1
from redteam_harness import bearer, raw_call

from kubekms.backend import Backend
from kubekms.devenv.gcpserver import GcpServer, gcp_server
from kubekms.devenv.kmsserver import Principal
from kubekms.providers import BackendConfig, open_backend
from kubekms.server import gcp_names
from kubekms.server import gcp_operations as ops
from kubekms.server.gcp_store import CryptoKeyRecord, GcpStore

PROJECT = "proj-plant"
LOCATION = f"projects/{PROJECT}/locations/global"
RING = f"{LOCATION}/keyRings/r"
MALLORY = Principal("mallory", actions=("create-alias", "decrypt-datakey", "describe-key"), keys=("mallory-key",),
                    projects=(PROJECT,))  # fmt: skip
OWNER = Principal("owner", projects=(PROJECT,))  # its AWS account is the project


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with gcp_server(tmp_path_factory.mktemp("red-plant"), principals=(MALLORY, OWNER), project_id=PROJECT) as running:
        yield running


def _aws(gcp: GcpServer, principal: str) -> Any:
    return gcp.server.aws_client(principal, region="us-east-1", max_attempts=None)


def _call(gcp: GcpServer, method: str, request: Any) -> tuple[grpc.StatusCode, bytes | str]:
    return raw_call(gcp, method, type(request).serialize(request), bearer(gcp))


def test_a_planted_alias_is_refused_not_adopted(gcp: GcpServer) -> None:
    owner, mallory = _aws(gcp, "owner"), _aws(gcp, "mallory")
    theirs = owner.create_key()["KeyMetadata"]["KeyId"]
    owner.create_alias(AliasName="alias/mallory-key", TargetKeyId=theirs)
    purpose = kms_v1.CryptoKey(purpose=kms_v1.CryptoKey.CryptoKeyPurpose.ENCRYPT_DECRYPT)
    ok = grpc.StatusCode.OK
    assert _call(gcp, "CreateKeyRing", kms_v1.CreateKeyRingRequest(parent=LOCATION, key_ring_id="r"))[0] is ok
    created = kms_v1.CreateCryptoKeyRequest(parent=RING, crypto_key_id="k", crypto_key=purpose)
    assert _call(gcp, "CreateCryptoKey", created)[0] is ok

    # the wires reserve gcp/ (as AWS reserves alias/aws/): the plant is refused there; one planted otherwise
    # (an older release, the keystore itself) is refused at adoption (test_one_refused_rotation_...)
    for planted in ("alias/gcp/global/r/k/2", "alias/gcp/global/r/later/1"):  # k's next version, a key to come
        with pytest.raises(botocore.exceptions.ClientError) as reserved:
            mallory.create_alias(AliasName=planted, TargetKeyId=theirs)
        assert reserved.value.response["Error"]["Code"] == "NotAuthorizedException"
    later = kms_v1.CreateCryptoKeyRequest(parent=RING, crypto_key_id="later", crypto_key=purpose)
    assert _call(gcp, "CreateCryptoKey", later)[0] is ok
    new_version = kms_v1.CreateCryptoKeyVersionRequest(parent=f"{RING}/cryptoKeys/k")
    code, answer = _call(gcp, "CreateCryptoKeyVersion", new_version)
    assert code is ok and isinstance(answer, bytes)
    assert owner.describe_key(KeyId="alias/gcp/global/r/k/2")["KeyMetadata"]["KeyId"] != theirs


@contextlib.asynccontextmanager
async def local_ring(tmp_path: Path) -> AsyncIterator[tuple[Backend, GcpStore, datetime]]:
    """A local keystore and a Cloud KMS store holding key ring ``r``: the API's operations called in-process."""
    backend = await open_backend(BackendConfig(provider="local", state_dir=tmp_path / "keystore", init=True))
    store = GcpStore(tmp_path)
    try:
        now = datetime.now(UTC)
        store.create_key_ring("global", "r", now.timestamp())
        yield backend, store, now
    finally:
        store.close()
        await backend.close()


def test_a_crash_leftover_is_still_adopted(tmp_path: Path) -> None:
    """The first half of an attempt (claim, then the keystore key) is run by hand: a crash after it is the fault."""

    async def scenario() -> None:
        async with local_ring(tmp_path) as (backend, store, now):
            store.create_crypto_key(CryptoKeyRecord("global", "r", "k", now.timestamp(), 30), None)
            call = ops.GcpCall(backend=backend, store=store, lock=asyncio.Lock(), now=now)
            name = gcp_names.CryptoKeyName(PROJECT, "global", "r", "k")
            assert not store.claim_version("global", "r", "k", 1, now.timestamp())
            left = await backend.create_key(name.version(1).keystore_alias, description="Cloud KMS CryptoKeyVersion")
            adopted = await ops.add_version(call, name, make_primary=True)
            assert adopted.keystore_key_id == left.key_id and adopted.version == 1

    asyncio.run(scenario())


def test_one_refused_rotation_does_not_stop_the_others(tmp_path: Path) -> None:
    """Automatic rotation: a planted alias refuses one key's new version; the other due keys still rotate."""

    async def scenario() -> None:
        async with local_ring(tmp_path) as (backend, store, now):
            for key in ("a", "b"):  # both due now, "a" sorts first
                due = CryptoKeyRecord("global", "r", key, now.timestamp(), 30, rotation_period=86400,
                                      next_rotation=now.timestamp() - 1)  # fmt: skip
                store.create_crypto_key(due, None)
            await backend.create_key("gcp/global/r/a/1")  # planted before the first version of "a"
            call = ops.GcpCall(backend=backend, store=store, lock=asyncio.Lock(), now=now)
            rotated, refused = await ops.rotate_due_keys(call, PROJECT)
            assert rotated == [f"{RING}/cryptoKeys/b"]
            assert list(refused) == [f"{RING}/cryptoKeys/a"] and "gcp/global/r/a/1" in refused[f"{RING}/cryptoKeys/a"]
            assert store.crypto_key("global", "r", "b").primary_version == 1

    asyncio.run(scenario())
