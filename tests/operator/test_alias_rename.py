"""A KMSKey's alias changed in the spec renames its key; a key renamed outside Kubernetes is renamed back, loudly.

A key of the kubekms (Huawei v1.0) wire has one primary alias (key_alias), which cannot be deleted: the
operator renames it with update-key-alias instead of adding the spec's alias beside it (a second alias
the spec never asked for, and on a single-alias cloud no way at all to follow the spec). The reconciler
runs against a real kubekms server over HTTP; the end-to-end tests run the operator as a real process on
the real kube-apiserver and rename the key with the CLI (``kubekms key rename``), as a person would.
"""

from __future__ import annotations

import logging
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import kopf
import pytest
from kopf._core.engines.posting import settings_var  # kopf's handler context, here only to silence Events
from operator_support import Cluster, operator_running

from kubekms.backend import Backend
from kubekms.devenv.controlplane import ControlPlane
from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.processes import ManagedProcess, kubekms_argv, wait_for
from kubekms.errors import NotFound
from kubekms.providers import BackendConfig, open_backend
from kubekms_operator.backends import BackendResolver
from kubekms_operator.handlers import KeyHandlers
from kubekms_operator.reconcile import AliasInUse, Change, KeyReconciler
from kubekms_operator.spec import DesiredKey, parse_key

NAMESPACE_PREFIX = "ar-"


class CallLog:
    """The real backend, with the name of every protocol call it served, in order."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._backend, name)

        async def logged(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return await method(*args, **kwargs)

        return logged


@pytest.fixture
async def backend(kms: KMSServer) -> AsyncIterator[Backend]:
    opened = await open_backend(kms.backend_config())
    yield opened
    await opened.close()


@pytest.fixture
def names() -> str:
    """An alias prefix of this test's own (the module's server is shared)."""
    return f"t{uuid.uuid4().hex[:8]}"


def wanting(aliases: list[str], uid: str = "uid-rename") -> DesiredKey:
    return parse_key({"aliases": aliases}, namespace="ns", name="app", uid=uid, annotations={})


async def never_alive(reference: str, uid: str) -> bool:
    return False


async def made(backend: Backend, aliases: list[str]) -> tuple[str, str]:
    """A key created and converged for ``aliases`` as the operator makes it: (key id, the alias it got)."""
    reconciler = KeyReconciler(backend, wanting(aliases), never_alive)
    key, _ = await reconciler.find_or_create("", may_exist=False)
    converged = await reconciler.converge(key, "")
    return key.key_id, converged.key.alias


async def converge(backend: Backend, aliases: list[str], key_id: str, known_alias: str) -> list[Change]:
    reconciler = KeyReconciler(backend, wanting(aliases), never_alive)
    return (await reconciler.converge(await backend.describe_key(key_id), "", known_alias)).changes


async def test_creating_costs_one_call_still(backend: Backend, names: str) -> None:
    """Issue 15: a new KMSKey costs one backend call (create_key); the rename logic adds none."""
    logged = CallLog(backend)
    reconciler = KeyReconciler(cast(Backend, logged), wanting([f"{names}/a"]), never_alive)
    key, _ = await reconciler.find_or_create("", may_exist=False)
    converged = await reconciler.converge(key, "")
    assert logged.calls == ["create_key"] and converged.changes == []
    assert key.alias == f"{names}/a"


async def test_a_spec_alias_change_renames_the_key(backend: Backend, names: str) -> None:
    key_id, alias = await made(backend, [f"{names}/a"])
    logged = CallLog(backend)
    changes = await converge(cast(Backend, logged), [f"{names}/b"], key_id, known_alias=alias)
    # One rename and the closing describe: no create_alias (which a single-alias cloud has not), no delete.
    assert logged.calls[1:] == ["update_key_alias", "describe_key"]
    assert [(c.reason, c.drift) for c in changes] == [("AliasRenamed", False)]
    assert changes[0].message == f"key {key_id} renamed from {names}/a to {names}/b"
    key = await backend.describe_key(key_id)
    assert (key.alias, key.aliases) == (f"{names}/b", (f"{names}/b",))
    with pytest.raises(NotFound):
        await backend.describe_key(f"{names}/a")
    assert await converge(backend, [f"{names}/b"], key_id, known_alias=f"{names}/b") == []


async def test_the_rename_goes_to_a_wanted_alias_the_key_lacks(backend: Backend, names: str) -> None:
    """spec.aliases [a, b] -> [b, c]: a (primary) renamed to c; b, already the key's, stays as it was."""
    key_id, _ = await made(backend, [f"{names}/a", f"{names}/b"])
    changes = await converge(backend, [f"{names}/b", f"{names}/c"], key_id, known_alias=f"{names}/a")
    assert [c.reason for c in changes] == ["AliasRenamed"]
    key = await backend.describe_key(key_id)
    assert (key.alias, set(key.aliases)) == (f"{names}/c", {f"{names}/b", f"{names}/c"})


async def test_a_key_renamed_outside_is_renamed_back_and_said_so(backend: Backend, names: str) -> None:
    key_id, alias = await made(backend, [f"{names}/a"])
    await backend.update_key_alias(key_id, f"{names}/elsewhere")
    changes = await converge(backend, [f"{names}/a"], key_id, known_alias=alias)
    assert [(c.reason, c.drift) for c in changes] == [("AliasRenamed", True)]
    assert changes[0].message == (
        f"key {key_id} was renamed from {names}/a to {names}/elsewhere; renamed to {names}/a as spec.aliases "
        f"says ({names}/elsewhere no longer names it)"
    )
    key = await backend.describe_key(key_id)
    assert key.aliases == (f"{names}/a",), "the spec's alias was added beside the out-of-band name"
    assert key.alias == f"{names}/a"


async def test_the_spec_name_taken_meanwhile_is_reported_and_nothing_changes(backend: Backend, names: str) -> None:
    key_id, alias = await made(backend, [f"{names}/a"])
    await backend.update_key_alias(key_id, f"{names}/elsewhere")
    squatter = await backend.create_key(f"{names}/a", description="made with the CLI")
    with pytest.raises(AliasInUse, match=f"alias {names}/a already names key {squatter.key_id}, which kubekms did not"):
        await converge(backend, [f"{names}/a"], key_id, known_alias=alias)
    key = await backend.describe_key(key_id)
    assert key.aliases == (f"{names}/elsewhere",)
    assert (await backend.describe_key(f"{names}/a")).key_id == squatter.key_id


async def test_dropping_the_primary_alias_for_one_the_key_holds_leaves_it(backend: Backend, names: str) -> None:
    """spec.aliases [a, b] -> [b]: renaming a onto b needs b deleted first, and b would name nothing for a
    moment; a stays (the known limit, see the findings), and no call is made."""
    key_id, _ = await made(backend, [f"{names}/a", f"{names}/b"])
    logged = CallLog(backend)
    reconciler = KeyReconciler(cast(Backend, logged), wanting([f"{names}/b"]), never_alive)
    converged = await reconciler.converge(await backend.describe_key(key_id), "", f"{names}/a")
    assert converged.changes == [] and logged.calls == []
    assert converged.kept_alias == (
        f"alias {names}/a still names key {key_id}: it is the key's primary alias, and every alias of spec.aliases "
        "names the key already; list a new alias first in spec.aliases to rename the key to it"
    )
    key = await backend.describe_key(key_id)
    assert (key.alias, set(key.aliases)) == (f"{names}/a", {f"{names}/a", f"{names}/b"})


async def test_a_backend_without_renames_keeps_adding_and_says_what_stays(kms: KMSServer, names: str) -> None:
    """Provider aws (here the server's AWS wire) refuses update_key_alias before any call: the spec's alias is
    added as before, and Synced's message says the old one still names the key."""
    config = BackendConfig(
        provider="aws", endpoint=kms.endpoint, region="eu-west-1", credentials_file=kms.credentials_file("admin")
    )
    aws = await open_backend(config)
    try:
        key_id, alias = await made(aws, [f"{names}/a"])
        reconciler = KeyReconciler(aws, wanting([f"{names}/b"]), never_alive)
        converged = await reconciler.converge(await aws.describe_key(key_id), "", alias)
        assert [c.reason for c in converged.changes] == ["AliasAdded"]
        assert set(converged.key.aliases) == {f"{names}/a", f"{names}/b"}
        assert converged.kept_alias.startswith(f"alias {names}/a still names key {key_id}: provider aws (through")
    finally:
        await aws.close()


@pytest.mark.parametrize("by", ["keyId", "alias"])
async def test_an_adopted_key_is_renamed_unless_spec_adopt_names_it_by_that_alias(
    backend: Backend, names: str, by: str
) -> None:
    """spec.adopt.alias must still name the key when the spec is applied again (a restored object): that
    primary alias stays, the spec's is added beside it; adopted by key id, the key is renamed."""
    legacy = await backend.create_key(f"{names}/legacy", description="made by hand")
    adopt = {"keyId": legacy.key_id} if by == "keyId" else {"alias": f"{names}/legacy"}
    spec = parse_key(
        {"adopt": adopt, "aliases": [f"{names}/new"]}, namespace="ns", name="app", uid="uid-adopt", annotations={}
    )
    reconciler = KeyReconciler(backend, spec, never_alive)
    key, _ = await reconciler.find_or_create("")
    converged = await reconciler.converge(key, "", f"{names}/legacy")
    expected = {f"{names}/new"} if by == "keyId" else {f"{names}/legacy", f"{names}/new"}
    assert set(converged.key.aliases) == expected
    assert converged.kept_alias == ""


# ---------------------------------------------------------------- the handlers on the real kube-apiserver


def kopf_body(raw: dict[str, Any] | None) -> kopf.Body:
    assert raw is not None
    return kopf.Body(cast(kopf.RawBody, raw))


@pytest.mark.usefixtures("operator_kube_client")
async def test_status_records_the_alias_and_synced_says_what_stays(
    plane: ControlPlane, kms: KMSServer, backend: Backend
) -> None:
    """The handlers in this process (no kopf, Events off), the real apiserver: status.alias follows the key's
    name; an alias the spec dropped but that still names the key is in Synced's message (AliasKept)."""
    settings = kopf.OperatorSettings()
    settings.posting.enabled = False
    settings.posting.level = logging.CRITICAL + 1
    settings_var.set(settings)
    cluster = Cluster(plane, f"arh-{uuid.uuid4().hex[:8]}")  # not the end-to-end operator's ar-* namespaces
    backend_name = cluster.backend(kms, f"arh-{cluster.namespace[-8:]}")
    first, second, third = (f"{cluster.namespace}/{name}" for name in ("first", "second", "third"))
    cluster.create_key("k", {"backendRef": {"name": backend_name}, "aliases": [first, second]})
    resolver = BackendResolver()
    handlers = KeyHandlers(resolver)
    try:
        await handlers.reconcile("create", kopf_body(cluster.key("k")), retry=0)
        assert cluster.status("k")["alias"] == first

        cluster.patch_key("k", {"spec": {"aliases": [second]}})
        await handlers.reconcile("update", kopf_body(cluster.key("k")), retry=0)
        synced = cluster.condition("k", "Synced")
        assert (synced["status"], synced["reason"]) == ("True", "AliasKept")
        assert synced["message"].startswith(f"alias {first} still names key {cluster.status('k')['keyId']}: ")

        cluster.patch_key("k", {"spec": {"aliases": [third, second]}})
        await handlers.reconcile("update", kopf_body(cluster.key("k")), retry=0)
        assert cluster.status("k")["alias"] == third
        assert cluster.condition("k", "Synced")["reason"] == "Synced"
        key = await backend.describe_key(cluster.status("k")["keyId"])
        assert (key.alias, set(key.aliases)) == (third, {second, third})
    finally:
        handlers.drift.stop()
        await resolver.close()
        cluster.delete_key("k")


# ---------------------------------------------------------------- the operator, end to end


@pytest.fixture(scope="module")
def operator(plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedProcess]:
    with operator_running(plane, tmp_path_factory.mktemp("operator"), [f"{NAMESPACE_PREFIX}*"], drift=2) as process:
        yield process


def rename(kms: KMSServer, key_id: str, alias: str) -> None:
    env = dict(
        os.environ,
        KUBEKMS_ENDPOINT=kms.endpoint,
        KUBEKMS_PROJECT_ID=kms.project_id,
        KUBEKMS_CREDENTIALS_FILE=str(kms.credentials_file("admin")),
    )
    subprocess.run(kubekms_argv("key", "rename", key_id, alias), env=env, check=True, capture_output=True)


@pytest.mark.e2e
def test_the_operator_follows_a_spec_rename_and_undoes_an_outside_one(
    cluster: Cluster, kms: KMSServer, operator: ManagedProcess
) -> None:
    backend = cluster.backend(kms, f"{NAMESPACE_PREFIX}{uuid.uuid4().hex[:8]}")
    first, second, outside = (f"{cluster.namespace}/{name}" for name in ("first", "second", "outside"))
    cluster.create_key("app", {"backendRef": {"name": backend}, "aliases": [first]})
    status = cluster.wait_ready("app")
    key_id = status["keyId"]
    assert status["alias"] == first

    cluster.patch_key("app", {"spec": {"aliases": [second]}})
    assert cluster.wait_ready("app")["alias"] == second
    key = kms.call("describe_key", key_id)
    assert (key.alias, key.aliases) == (second, (second,))
    renamed = wait_for(
        lambda: [e for e in cluster.events("app") if e.reason == "AliasRenamed"], 30, "an AliasRenamed Event"
    )
    assert [(e.type, e.message) for e in renamed] == [("Normal", f"key {key_id} renamed from {first} to {second}")]

    rename(kms, key_id, outside)
    wait_for(lambda: kms.call("describe_key", key_id).alias == second, 30, "the operator to rename the key back")
    assert kms.call("describe_key", key_id).aliases == (second,)
    drift = wait_for(
        lambda: [e for e in cluster.events("app") if e.reason == "DriftCorrected"], 30, "a DriftCorrected Event"
    )
    assert drift[0].type == "Warning"
    assert drift[0].message == (
        f"changed outside Kubernetes; key {key_id} was renamed from {second} to {outside}; renamed to {second} "
        f"as spec.aliases says ({outside} no longer names it)"
    )
    assert cluster.wait_ready("app")["alias"] == second
