"""Helpers shared by the plugin tests (imported by module name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import grpc

from kubekms.devenv.plugin import PluginProcess
from kubekms_plugin.v2 import api_pb2_grpc


def stub(plugin: PluginProcess) -> api_pb2_grpc.KeyManagementServiceStub:
    return api_pb2_grpc.KeyManagementServiceStub(grpc.insecure_channel(plugin.endpoint))
