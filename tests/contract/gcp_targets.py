"""Provider ``gcp`` in the contract suite, on the kubekms server's Cloud KMS gRPC API.

One server per module; each test gets an empty key ring of its own. Where Cloud KMS itself
differs from the contract the test is marked xfail (strict: it must fail) with the reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from kubekms.backend import Backend
from kubekms.devenv.gcpserver import GcpServer, gcp_server
from kubekms.providers import open_backend

CLOUD_KMS_DIFFERS = {
    "test_aliases": "Cloud KMS has no aliases: a key's only alias is its crypto key id",
    "test_schedule_and_cancel_deletion_leaves_the_key_disabled": "the pending window is the key's "
    "destroy_scheduled_duration (30 days), fixed at creation; the test asks for 7",
    "test_pending_keys_refuse_new_tags_and_aliases": "the pending window is fixed at 30 days; the test asks for 7",
    "test_automatic_rotation_settings": "Cloud KMS forgets rotation_period when rotation is turned off",
    "test_cmk_limit": "Cloud KMS has no limit on the number of keys to configure",
    "test_random_lengths[gcp_kubekms-1]": "Cloud KMS GenerateRandomBytes gives 8 to 1024 bytes",
}


@pytest.fixture(scope="module")
def gcp_contract_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    with gcp_server(tmp_path_factory.mktemp("contract-gcp"), project_id="contract-gcp") as server:
        yield server


async def open_on_gcp_server(request: pytest.FixtureRequest) -> Backend:
    reason = CLOUD_KMS_DIFFERS.get(request.node.name) or CLOUD_KMS_DIFFERS.get(request.node.originalname)
    if reason is not None:
        request.node.add_marker(pytest.mark.xfail(reason=reason, strict=True))
    server: GcpServer = request.getfixturevalue("gcp_contract_server")
    return await open_backend(server.backend_config(key_ring=f"contract-{uuid.uuid4().hex[:12]}"))
