"""The Locations mixin (ListLocations, GetLocation) with the official client over gRPC and REST, and key rings
refused in locations this server does not serve (``gcp.locations``; default Cloud KMS's own)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from gcp_harness import APP, LOCATION, PROJECT, READER, STRANGER, client, credentials
from google.api_core import exceptions
from google.cloud import kms_v1
from google.cloud.location import locations_pb2  # type: ignore[import-untyped]

from kubekms.devenv.gcpserver import GcpServer, gcp_server
from kubekms.server.gcp_names import DEFAULT_LOCATIONS
from kubekms.server.gcp_settings import GcpSettings

Client = kms_v1.KeyManagementServiceClient
PARENT = f"projects/{PROJECT}"


def rest_client(gcp: GcpServer, principal: str = "admin") -> Client:
    return Client(credentials=credentials(gcp, principal), client_options={"api_endpoint": gcp.rest_endpoint},
                  transport="rest")  # fmt: skip


TRANSPORTS: dict[str, Callable[[GcpServer, str], Client]] = {"grpc": client, "rest": rest_client}


@pytest.fixture(params=sorted(TRANSPORTS))
def connect(request: pytest.FixtureRequest, gcp: GcpServer) -> Callable[[str], Client]:
    make = TRANSPORTS[request.param]
    return lambda principal="admin": make(gcp, principal)


def _ids(response: Any) -> list[str]:
    return [location.location_id for location in response.locations]


def test_list_locations_names_every_served_location(connect: Callable[..., Client]) -> None:
    response = connect().list_locations(request={"name": PARENT})
    assert _ids(response) == list(DEFAULT_LOCATIONS) and response.next_page_token == ""
    first = response.locations[0]
    assert first.name == LOCATION and first.location_id == "global"
    metadata = kms_v1.LocationMetadata.pb()()
    assert first.metadata.Unpack(metadata) and not metadata.hsm_available and not metadata.ekm_available


def test_list_locations_pages_and_filters(connect: Callable[..., Client]) -> None:
    kms, seen, token = connect(), [], ""
    while True:
        page = kms.list_locations(request={"name": PARENT, "page_size": 7, "page_token": token})
        assert len(page.locations) <= 7
        seen += _ids(page)
        token = page.next_page_token
        if not token:
            break
    assert seen == list(DEFAULT_LOCATIONS)
    chosen = kms.list_locations(request={"name": PARENT, "filter": 'location_id="us-east1" OR location_id=eu*'})
    assert _ids(chosen) == ["us-east1"]  # "eu*" is no location id: only a `:` would take it as a prefix
    europe = kms.list_locations(request={"name": PARENT, "filter": "location_id:europe-west"})
    assert _ids(europe) and all(i.startswith("europe-west") for i in _ids(europe))
    with pytest.raises(exceptions.BadRequest):  # REST: BadRequest; gRPC: InvalidArgument, a BadRequest
        kms.list_locations(request={"name": PARENT, "filter": "no_such_field=1"})
    with pytest.raises(exceptions.BadRequest):  # REST: BadRequest; gRPC: InvalidArgument, a BadRequest
        kms.list_locations(request={"name": PARENT, "page_token": "not-ours"})


def test_get_location_and_unknown_locations(connect: Callable[..., Client]) -> None:
    kms = connect()
    location = kms.get_location(request={"name": f"{PARENT}/locations/us-east1"})
    assert location.name == f"{PARENT}/locations/us-east1" and location.location_id == "us-east1"
    with pytest.raises(exceptions.NotFound, match="Cloud KMS is not available in location 'nowhere'"):
        kms.get_location(request={"name": f"{PARENT}/locations/nowhere"})
    with pytest.raises(exceptions.BadRequest):  # REST: BadRequest; gRPC: InvalidArgument, a BadRequest
        kms.get_location(request={"name": f"{PARENT}/locations/Not_A_Location"})


def test_key_rings_only_in_served_locations(connect: Callable[..., Client], request: pytest.FixtureRequest) -> None:
    kms, ring_id = connect(), f"ring-{request.node.callspec.id}"
    nowhere = f"{PARENT}/locations/nowhere"
    with pytest.raises(exceptions.NotFound, match="Cloud KMS is not available in location 'nowhere'"):
        kms.create_key_ring(request={"parent": nowhere, "key_ring_id": ring_id})
    assert list(kms.list_key_rings(request={"parent": nowhere})) == []  # nothing half-made
    with pytest.raises(exceptions.NotFound, match="not available"):
        kms.generate_random_bytes(request={"location": nowhere, "length_bytes": 16})
    made = kms.create_key_ring(request={"parent": f"{PARENT}/locations/europe-west4", "key_ring_id": ring_id})
    assert made.name == f"{PARENT}/locations/europe-west4/keyRings/{ring_id}"


def test_locations_need_list_keys_in_the_project(connect: Callable[..., Client]) -> None:
    assert "global" in _ids(connect(READER.name).list_locations(request={"name": PARENT}))
    for principal in (APP.name, STRANGER.name):  # APP lacks list-keys; STRANGER is of another project
        with pytest.raises(exceptions.Forbidden):  # gRPC: PermissionDenied, a Forbidden
            connect(principal).list_locations(request={"name": PARENT})
        with pytest.raises(exceptions.Forbidden):  # gRPC: PermissionDenied, a Forbidden
            connect(principal).get_location(request={"name": LOCATION})


# ------------------------------------------------------------------ gcp.locations set in the config


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GcpServer]:
    """A server whose key ring in us-east1 was made under the default list, restarted with [global, moon-1]."""
    with gcp_server(tmp_path_factory.mktemp("kms-gcp-locations"), project_id=PROJECT) as running:
        client(running).create_key_ring(request={"parent": f"{PARENT}/locations/us-east1", "key_ring_id": "old"})
        running.server.stop()
        config_path = running.server.state_dir / "server.yaml"
        config = yaml.safe_load(config_path.read_text())
        config["gcp"]["locations"] = ["global", "moon-1"]
        config_path.write_text(yaml.safe_dump(config))
        running.server.start()
        _until_served(running)
        yield running


def _until_served(gcp: GcpServer) -> None:
    deadline = time.monotonic() + 30
    while True:
        try:
            client(gcp).list_locations(request={"name": PARENT}, timeout=2)
            return
        except exceptions.GoogleAPICallError:
            if time.monotonic() > deadline:
                raise


@pytest.mark.parametrize("transport", sorted(TRANSPORTS))
def test_configured_locations(configured: GcpServer, transport: str) -> None:
    kms = TRANSPORTS[transport](configured, "admin")
    assert _ids(kms.list_locations(request={"name": PARENT})) == ["global", "moon-1"]
    kms.create_key_ring(request={"parent": f"{PARENT}/locations/moon-1", "key_ring_id": f"new-{transport}"})
    with pytest.raises(exceptions.NotFound, match="'us-east1'"):
        kms.create_key_ring(request={"parent": f"{PARENT}/locations/us-east1", "key_ring_id": f"new-{transport}"})
    with pytest.raises(exceptions.NotFound, match="'us-east1'"):
        kms.get_location(request={"name": f"{PARENT}/locations/us-east1"})
    # a key ring made before the list changed stays readable
    old = kms.get_key_ring(request={"name": f"{PARENT}/locations/us-east1/keyRings/old"})
    assert old.name.endswith("/locations/us-east1/keyRings/old")


@pytest.mark.parametrize(
    ("value", "message"),
    [([], "non-empty list"), (["Global"], "location ids"), ("global", "non-empty list"), ([7], "location ids"),
     (["global", "global"], "twice"), (["x" * 64], "location ids")],
)  # fmt: skip
def test_locations_setting_refused(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        GcpSettings.from_config({"listen": "127.0.0.1:1", "locations": value})


def test_locations_setting_default_and_given() -> None:
    assert GcpSettings.from_config({"listen": "127.0.0.1:1"}).locations == DEFAULT_LOCATIONS  # type: ignore[union-attr]
    given = GcpSettings.from_config({"listen": "127.0.0.1:1", "locations": ["eu", "global"]})
    assert given is not None and given.locations == ("eu", "global")
    assert "global" in DEFAULT_LOCATIONS  # what every existing test and user names


def test_raw_request_messages_parse() -> None:
    """The mixin's messages are plain protobuf: the server parses them as such (no proto-plus wrapper)."""
    from kubekms.server.gcp_grpc import LOCATION_METHODS

    wire = locations_pb2.ListLocationsRequest(name=PARENT, page_size=3).SerializeToString()
    parsed = LOCATION_METHODS["ListLocations"].request_type.deserialize(wire)
    assert parsed.name == PARENT and parsed.page_size == 3
