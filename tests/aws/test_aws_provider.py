"""Provider ``aws`` beyond the shared contract: AWS ranges, error mapping, aliases, aad, versions, credentials.

Each test runs against the kubekms server's AWS endpoint and, where moto behaves like AWS,
against moto's server too. Where moto does not enforce an AWS rule, the test says so and
checks our server only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import boto3
import pytest

from kubekms.backend import Backend, KeyState
from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server
from kubekms.devenv.motoserver import MotoServer, moto_server
from kubekms.devenv.processes import free_port
from kubekms.errors import (
    AccessDenied,
    AlreadyExists,
    Disabled,
    InvalidArgument,
    InvalidCiphertext,
    LimitExceeded,
    NotFound,
    PendingDeletion,
    Reason,
    Unauthenticated,
    Unavailable,
)
from kubekms.providers import BackendConfig, Credentials, open_backend

REGION = "eu-west-1"


@pytest.fixture(scope="module")
def kms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    limited = Principal("limited", actions=("create-datakey",), keys=("nothing-here",), projects=("default",))
    plugin = Principal("plugin", actions=("create-datakey", "decrypt-datakey", "describe-key"), keys=("plugin-key",))
    # Every read of a describe but the tags: an operator identity missing kms:ListResourceTags.
    no_tags = Principal("no-tags", actions=("describe-key", "list-aliases", "get-key-rotation-status"))
    with kms_server(tmp_path_factory.mktemp("kms"), principals=(limited, plugin, no_tags)) as server:
        yield server


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as server:
        yield server


def kubekms_config(server: KMSServer, principal: str = "admin") -> BackendConfig:
    return BackendConfig(
        provider="aws", endpoint=server.endpoint, region=REGION, credentials_file=server.credentials_file(principal)
    )


def moto_config(server: MotoServer) -> BackendConfig:
    credentials = Credentials(access_key=server.access_key, secret_key=server.secret_key)
    return BackendConfig(provider="aws", endpoint=server.endpoint, region=server.region, credentials=credentials)


@pytest.fixture(params=["kubekms-server", "moto"])
async def backend(request: pytest.FixtureRequest, kms: KMSServer, moto: MotoServer) -> AsyncIterator[Backend]:
    config = kubekms_config(kms) if request.param == "kubekms-server" else moto_config(moto)
    opened = await open_backend(config)
    yield opened
    await opened.close()


@pytest.fixture
async def ours(kms: KMSServer) -> AsyncIterator[Backend]:
    opened = await open_backend(kubekms_config(kms))
    yield opened
    await opened.close()


async def test_aws_ranges_are_refused_before_any_call(backend: Backend) -> None:
    key = await backend.create_key("")
    for days in (6, 31):
        with pytest.raises(InvalidArgument, match="AWS KMS allows a pending window"):
            await backend.schedule_key_deletion(key.key_id, days)
    for days in (89, 2561):
        with pytest.raises(InvalidArgument, match="AWS KMS allows a rotation period"):
            await backend.set_rotation(key.key_id, enabled=True, interval_days=days)
    for length in (0, 1025):
        with pytest.raises(InvalidArgument, match="AWS KMS allows random byte counts"):
            await backend.generate_random(length)
    with pytest.raises(InvalidArgument):
        await backend.encrypt_data_key(key.key_id, b"x" * 4097)
    assert (await backend.describe_key(key.key_id)).state is KeyState.ENABLED  # nothing was applied
    assert len(await backend.generate_random(1024)) == 1024


async def test_protocol_alias_is_aws_alias_slash_name(backend: Backend) -> None:
    key = await backend.create_key("billing-key", description="billing", tags={"owner": "billing"})
    assert key.alias == "billing-key" and key.aliases == ("billing-key",) and key.tags == {"owner": "billing"}
    assert (await backend.describe_key("billing-key")).key_id == key.key_id
    await backend.create_alias(key.key_id, "billing-key-2")
    assert await backend.list_aliases("billing-key") == ["billing-key", "billing-key-2"]
    with pytest.raises(AlreadyExists):
        await backend.create_alias((await backend.create_key("")).key_id, "billing-key-2")
    for bad in ("not valid!", "aws/reserved", "x" * 251, "has:colon"):
        with pytest.raises(InvalidArgument):
            await backend.create_alias(key.key_id, bad)
    await backend.delete_alias(key.key_id, "billing-key-2")
    with pytest.raises(NotFound):
        await backend.describe_key("billing-key-2")
    with pytest.raises(NotFound):
        await backend.delete_alias(key.key_id, "never-existed")


async def test_alias_taken_leaves_no_usable_key(backend: Backend) -> None:
    await backend.create_key("taken-alias")
    before = await backend.instance_count()
    with pytest.raises(AlreadyExists):
        await backend.create_key("taken-alias")
    states = [(await backend.describe_key(key.key_id)).state for key in (await backend.list_keys(limit=1000)).keys]
    assert await backend.instance_count() == before + 1  # the orphan exists on AWS ...
    assert states.count(KeyState.PENDING_DELETION) >= 1  # ... but is scheduled for deletion at once


def on_moto(request: pytest.FixtureRequest) -> bool:
    return bool(request.node.callspec.params["backend"] == "moto")


async def test_aad_binds_data_keys(backend: Backend, request: pytest.FixtureRequest) -> None:
    key = await backend.create_key("")
    data_key = await backend.create_data_key(key.key_id, length=32, aad=b"\x00binary aad\xff")
    assert data_key.plaintext is not None and len(data_key.plaintext) == 32
    assert await backend.decrypt_data_key(key.key_id, data_key.ciphertext, aad=b"\x00binary aad\xff") == (
        data_key.plaintext
    )
    for wrong in (b"", b"other"):
        with pytest.raises(InvalidCiphertext):
            await backend.decrypt_data_key(key.key_id, data_key.ciphertext, aad=wrong)
    other = await backend.create_key("")
    # AWS and our server answer IncorrectKeyException; moto answers AccessDeniedException instead
    with pytest.raises(AccessDenied if on_moto(request) else InvalidCiphertext):
        await backend.decrypt_data_key(other.key_id, data_key.ciphertext, aad=b"\x00binary aad\xff")


async def test_versions_count_rotations(backend: Backend) -> None:
    key = await backend.create_key("")
    assert key.current_version == 1
    first = await backend.create_data_key(key.key_id)
    assert first.key_version == 1
    rotated = await backend.rotate_key(key.key_id)
    assert rotated.current_version == 2 and rotated.last_rotation_at is not None
    second = await backend.create_data_key(key.key_id)
    assert second.key_version == 2  # our own rotation refreshes the cached version at once
    status = await backend.get_rotation_status(key.key_id)
    assert status.number_of_rotations == 1
    assert await backend.decrypt_data_key(key.key_id, first.ciphertext) == first.plaintext


async def test_find_keys_by_tag(backend: Backend) -> None:
    tagged = await backend.create_key("", tags={"kubekms.io/uid": "uid-123"})
    await backend.create_key("", tags={"kubekms.io/uid": "uid-456"})
    found = await backend.find_keys_by_tag("kubekms.io/uid", "uid-123")
    assert [key.key_id for key in found] == [tagged.key_id]


async def test_disabled_and_pending_deletion_map_to_our_classes(ours: Backend) -> None:
    # moto does not enforce these AWS state rules (it encrypts with a disabled or pending-deletion
    # key), so they are checked against our server only.
    key = await ours.create_key("")
    await ours.disable_key(key.key_id)
    with pytest.raises(Disabled):
        await ours.create_data_key(key.key_id)
    deleting = await ours.schedule_key_deletion(key.key_id, 7)
    assert deleting.state is KeyState.PENDING_DELETION and deleting.deletion_date is not None
    with pytest.raises(PendingDeletion):
        await ours.create_data_key(key.key_id)
    assert (await ours.cancel_key_deletion(key.key_id)).state is KeyState.DISABLED


async def test_moto_does_not_enforce_disabled(moto: MotoServer) -> None:
    """Documents the gap: the same call that raises Disabled on our server (and on AWS) succeeds on moto."""
    backend = await open_backend(moto_config(moto))
    try:
        key = await backend.create_key("")
        await backend.disable_key(key.key_id)
        data_key = await backend.create_data_key(key.key_id)
        assert data_key.plaintext is not None
    finally:
        await backend.close()


async def test_authentication_and_authorization_errors(kms: KMSServer, tmp_path: Path) -> None:
    limited = await open_backend(kubekms_config(kms, "limited"))
    try:
        with pytest.raises(AccessDenied):
            await limited.create_key("")
    finally:
        await limited.close()
    forged_file = tmp_path / "forged.yaml"
    forged_file.write_text("access_key: AKNOBODY\nsecret_key: wrong\n")
    forged = await open_backend(
        BackendConfig(provider="aws", endpoint=kms.endpoint, region=REGION, credentials_file=forged_file)
    )
    try:
        with pytest.raises(Unauthenticated):
            await forged.check_health()
    finally:
        await forged.close()


async def test_unreachable_endpoint_is_unavailable(tmp_path: Path) -> None:
    # a loopback port nobody listens on: connection refused, retried by botocore, then Unavailable
    config = BackendConfig(
        provider="aws",
        endpoint=f"http://127.0.0.1:{free_port()}",
        region=REGION,
        credentials=Credentials(access_key="AKID", secret_key="secret"),
    )
    backend = await open_backend(config)
    try:
        with pytest.raises(Unavailable) as raised:
            await backend.check_health()
        assert raised.value.retryable
    finally:
        await backend.close()


async def test_ambient_credentials_and_region(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", moto.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", moto.secret_key)
    monkeypatch.setenv("AWS_REGION", moto.region)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    backend = await open_backend(BackendConfig(provider="aws", endpoint=moto.endpoint))
    try:
        key = await backend.create_key("")
        direct = boto3.client(
            "kms",
            endpoint_url=moto.endpoint,
            region_name=moto.region,
            aws_access_key_id=moto.access_key,
            aws_secret_access_key=moto.secret_key,
        )
        assert direct.describe_key(KeyId=key.key_id)["KeyMetadata"]["KeyId"] == key.key_id
    finally:
        await backend.close()
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(InvalidArgument, match="needs a region"):
        await open_backend(BackendConfig(provider="aws", endpoint=moto.endpoint))


async def test_rotation_settings_within_aws_periods(backend: Backend, request: pytest.FixtureRequest) -> None:
    key = await backend.create_key("")
    enabled = await backend.set_rotation(key.key_id, enabled=True, interval_days=90)
    described = await backend.describe_key(key.key_id)
    assert enabled.enabled and described.rotation_enabled
    if not on_moto(request):  # moto does not report RotationPeriodInDays
        assert enabled.interval_days == described.rotation_interval_days == 90
    assert enabled.next_rotation_at is None or enabled.next_rotation_at > described.created_at
    disabled = await backend.set_rotation(key.key_id, enabled=False)
    assert not disabled.enabled and not (await backend.describe_key(key.key_id)).rotation_enabled


@pytest.fixture(scope="module")
def small_kms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("small-kms"), cmk_limit=2) as server:
        yield server


async def test_cmk_limit_is_limit_exceeded(small_kms: KMSServer) -> None:
    # moto enforces no key quota: our server only
    backend = await open_backend(kubekms_config(small_kms))
    try:
        await backend.create_key("first")
        await backend.create_key("")
        with pytest.raises(LimitExceeded) as refused:
            await backend.create_key("third")
        assert refused.value.reason is Reason.LIMIT_EXCEEDED
        assert await backend.instance_count() == 2
        with pytest.raises(NotFound):
            await backend.describe_key("third")  # the alias check comes after CreateKey failed: nothing made
    finally:
        await backend.close()


async def test_data_keys_with_data_key_permissions_only(ours: Backend, kms: KMSServer) -> None:
    """The plugin's least privilege: without kms:ListKeyRotations the version stays at its last known value."""
    key = await ours.create_key("plugin-key")
    plugin = await open_backend(kubekms_config(kms, "plugin"))
    try:
        data_key = await plugin.create_data_key("plugin-key", aad=b"kek")
        assert data_key.key_id == key.key_id and data_key.key_version == 1
        described = await plugin.describe_key("plugin-key")  # DescribeKey only: the rest is not readable
        assert (described.key_id, described.state, described.current_version) == (key.key_id, KeyState.ENABLED, 1)
        assert described.aliases == ()
        assert await plugin.decrypt_data_key("plugin-key", data_key.ciphertext, aad=b"kek") == data_key.plaintext
        with pytest.raises(AccessDenied):
            await plugin.rotate_key("plugin-key")
        await ours.rotate_key(key.key_id)
        assert (await plugin.create_data_key("plugin-key")).key_version == 1  # last known: cannot list rotations
    finally:
        await plugin.close()


async def test_refused_tags_are_an_access_denied_error_not_an_empty_set(ours: Backend, kms: KMSServer) -> None:
    """The operator decides by its owner and rotate-request tags: "may not read" must never read as "none"."""
    key = await ours.create_key("tags-refused", tags={"kubekms.io/owner-uid": "uid-1"})
    reader = await open_backend(kubekms_config(kms, "no-tags"))
    try:
        described = await reader.describe_key("tags-refused")
        assert (described.key_id, described.aliases, described.state) == (
            key.key_id,
            ("tags-refused",),
            KeyState.ENABLED,
        )
        with pytest.raises(AccessDenied, match="the key's tags cannot be read"):
            described.tags.get("kubekms.io/owner-uid")
        with pytest.raises(AccessDenied):
            dict(described.tags)
        assert described == await reader.describe_key(key.key_id)  # comparing metadata does not read the tags
        with pytest.raises(AccessDenied):
            await reader.list_tags(key.key_id)
    finally:
        await reader.close()
