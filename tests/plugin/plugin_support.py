"""Helpers shared by the plugin tests (imported by module name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import asyncio

import grpc

from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.plugin import PluginProcess
from kubekms.providers import BackendConfig, open_backend
from kubekms_plugin.v2 import api_pb2_grpc


def admin_call(server: KMSServer, operation: str, *args: object, **kwargs: object) -> object:
    async def call() -> object:
        backend = await open_backend(
            BackendConfig(
                provider="kubekms",
                endpoint=server.endpoint,
                project_id=server.project_id,
                credentials_file=server.credentials_file("admin"),
            )
        )
        try:
            return await getattr(backend, operation)(*args, **kwargs)
        finally:
            await backend.close()

    return asyncio.run(call())


def stub(plugin: PluginProcess) -> api_pb2_grpc.KeyManagementServiceStub:
    return api_pb2_grpc.KeyManagementServiceStub(grpc.insecure_channel(plugin.endpoint))
