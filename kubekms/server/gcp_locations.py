"""The ``google.cloud.location.Locations`` mixin of Cloud KMS (ListLocations, GetLocation) on ``gcp.locations``.

Its messages are plain protobuf classes (``locations_pb2``), not proto-plus: :class:`RawMessage` gives them the
few class methods the transports use on the service's proto-plus messages, so both share one dispatch.
"""

from __future__ import annotations

from typing import Any

from google.cloud import kms_v1
from google.cloud.location import locations_pb2  # type: ignore[import-untyped]  # googleapis-common-protos: no stubs
from google.protobuf import any_pb2
from google.protobuf.message import Message

from kubekms.server import gcp_names as names
from kubekms.server.gcp_filters import message_filter
from kubekms.server.gcp_operations import GcpCall, next_token, page_window


class RawMessage:
    """A protobuf message class with proto-plus's ``deserialize``/``serialize``/``pb``/``wrap``."""

    def __init__(self, message_class: Any) -> None:
        self._class = message_class

    def deserialize(self, data: bytes) -> Any:
        return self._class.FromString(data)

    def serialize(self, message: Message) -> bytes:
        return message.SerializeToString()

    def pb(self, message: Message | None = None) -> Any:
        return self._class if message is None else message

    def wrap(self, message: Message) -> Message:
        return message


def location_message(project: str, location: str) -> locations_pb2.Location:
    """A served location as Cloud KMS describes one: its metadata says no HSM and no EKM (SOFTWARE keys only)."""
    metadata = any_pb2.Any()
    metadata.Pack(kms_v1.LocationMetadata.pb()(hsm_available=False, ekm_available=False))
    name = names.LocationName(project, location)
    return locations_pb2.Location(name=str(name), location_id=location, metadata=metadata)


async def list_locations(call: GcpCall, request: locations_pb2.ListLocationsRequest) -> Any:
    project = names.project_name(request.name, "name")
    predicate = message_filter(request.filter, locations_pb2.Location.DESCRIPTOR)
    offset, limit = page_window(request.page_size, request.page_token)
    listed = (location_message(project.project, location) for location in call.locations)
    chosen = [location for location in listed if predicate is None or predicate(location)]
    page = chosen[offset : offset + limit]
    return locations_pb2.ListLocationsResponse(locations=page,
                                               next_page_token=next_token(offset, len(page), len(chosen)))  # fmt: skip


async def get_location(call: GcpCall, request: locations_pb2.GetLocationRequest) -> locations_pb2.Location:
    name = names.served_location(names.location_name(request.name, "name"), call.locations)
    return location_message(name.project, name.location)
