"""The Cloud KMS API's listeners: gRPC on ``gcp.listen``, the REST mapping on ``gcp.rest_listen`` (optional).

Both serve one :class:`~kubekms.server.gcp_grpc.CloudKmsService` on the application's keystores,
principals, audit log and metrics, with the server's TLS certificate when it has one.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import grpc
from aiohttp import web

from kubekms.server.app import KMSApplication
from kubekms.server.audit import AuditLog
from kubekms.server.config import ServerConfig, parse_listen
from kubekms.server.gcp_auth import JwtVerifier
from kubekms.server.gcp_grpc import MAX_MESSAGE_BYTES, CloudKmsService
from kubekms.server.gcp_rest import CloudKmsRest
from kubekms.server.gcp_settings import GcpSettings
from kubekms.server.principals import PrincipalDirectory

log = logging.getLogger("kubekms.server.gcp")

# aiohttp closes a connection idle this long, also one whose request head has not arrived whole (its default,
# an hour, let idle and slowloris connections pile up in the worker that serves every wire); as the HTTP front
IDLE_SECONDS = 75.0


class CloudKmsListener:
    def __init__(self, service: CloudKmsService, settings: GcpSettings, tls: tuple[Path, Path] | None,
                 ssl_context: ssl.SSLContext | None) -> None:  # fmt: skip
        self.service = service
        self._settings = settings
        self._tls = tls
        self._ssl_context = ssl_context
        self._server: grpc.aio.Server | None = None
        self._rest: web.AppRunner | None = None

    async def start(self) -> None:
        # runner imports this module
        from kubekms.server.runner import ServerSetupError, is_loopback, listen_refusal, probe_listen

        host, port = parse_listen(self._settings.listen)
        listens = (self._settings.listen, *filter(None, [self._settings.rest_listen]))
        beyond = [address for address in listens if not is_loopback(parse_listen(address)[0])]
        if self._tls is None and beyond:
            # OSError: the start failure the server (and each worker) reports and exits on
            raise OSError(f"the Cloud KMS API in plaintext beyond loopback ({', '.join(beyond)}) would carry bearer "
                          "tokens, replayable for up to an hour, in clear text: configure tls_cert and tls_key, or "
                          "listen on loopback")  # fmt: skip
        server = grpc.aio.server(
            options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                     ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                     # gRPC's default SO_REUSEPORT would bind beside another server's listener and share its calls
                     ("grpc.so_reuseport", 0)]
        )  # fmt: skip
        server.add_generic_rpc_handlers(self.service.rpc_handlers())
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        probe_listen("gcp.listen", host, port)  # gRPC says only "Failed to bind": the probe names the cause
        try:
            if self._tls is None:
                bound = server.add_insecure_port(address)
            else:
                cert, key = self._tls
                bound = server.add_secure_port(
                    address, grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
                )
        except RuntimeError:  # taken between the probe and here
            bound = 0
        if bound == 0:
            raise ServerSetupError(f"cannot listen on {address} (gcp.listen) for the Cloud KMS API; set gcp.listen "
                                   "to a free address")  # fmt: skip
        await server.start()
        self._server = server
        fields = {"listen": address, "tls": self._tls is not None, "service_accounts": len(self.service.verifier)}
        log.info("Cloud KMS gRPC API listening", extra={"fields": fields})
        if self._settings.rest_listen:
            rest_host, rest_port = parse_listen(self._settings.rest_listen)
            self._rest = web.AppRunner(CloudKmsRest(self.service).build(), access_log=None, handle_signals=False,
                                       keepalive_timeout=IDLE_SECONDS)  # fmt: skip
            await self._rest.setup()
            try:
                await web.TCPSite(self._rest, rest_host, rest_port, ssl_context=self._ssl_context).start()
            except OSError as error:
                await self.stop(0)
                raise listen_refusal("gcp.rest_listen", rest_host, rest_port, error) from None
            rest_fields = {"listen": self._settings.rest_listen, "tls": self._ssl_context is not None}
            log.info("Cloud KMS REST API listening", extra={"fields": rest_fields})

    async def stop(self, grace: float = 5.0) -> None:
        if self._rest is not None:
            await self._rest.cleanup()
        if self._server is not None:
            await self._server.stop(grace)
        self.service.close()


def cloud_kms_listener(
    config: ServerConfig,
    principals: PrincipalDirectory,
    application: KMSApplication,
    audit: AuditLog,
    ssl_context: ssl.SSLContext | None,
) -> CloudKmsListener:
    """The listeners of ``config.gcp`` on the application's keystores, metrics and refusal log."""
    assert config.gcp is not None
    service = CloudKmsService(
        state_dir=config.state_dir,
        principals=principals,
        verifier=JwtVerifier(principals, config.gcp.audiences, token_audiences=config.gcp.token_audiences),
        backend_for=application.backend_for,
        audit=audit,
        metrics=application.metrics,
        refusals=application.refusals,
        locations=config.gcp.locations,
    )
    tls = (config.tls_cert, config.tls_key) if config.tls_cert is not None and config.tls_key is not None else None
    return CloudKmsListener(service, config.gcp, tls, ssl_context)
