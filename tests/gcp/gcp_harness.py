"""The official google-cloud-kms client on the kubekms server's Cloud KMS listener.

``KeyManagementServiceClient`` with service-account credentials (self-signed JWTs, no token
endpoint) and ``client_options.api_endpoint``; the only thing not stock is the channel:
plaintext on loopback (gRPC local credentials, which carry call credentials without TLS).
"""

from __future__ import annotations

import functools
import json
from typing import Any

import boto3
import grpc
import yaml
from google.cloud import kms_v1
from google.cloud.kms_v1.services.key_management_service.transports import KeyManagementServiceGrpcTransport
from google.oauth2 import service_account

from kubekms.devenv.gcpserver import GcpServer
from kubekms.devenv.kmsserver import Principal

PROJECT = "proj-gcp"
LOCATION = f"projects/{PROJECT}/locations/global"
# may use one crypto key only (named as Cloud KMS does), with the data-key permissions
APP = Principal("app", actions=("encrypt-datakey", "decrypt-datakey", "describe-key"),
                keys=(f"{LOCATION}/keyRings/shared/cryptoKeys/app",), projects=(PROJECT,))  # fmt: skip
# may only read, in every key of the project
READER = Principal("reader", actions=("describe-key", "list-keys"), projects=(PROJECT,))
# allowed everything in another project only
STRANGER = Principal("stranger", projects=("elsewhere",))


def loopback_channel(host: str, **kwargs: Any) -> grpc.Channel:
    """The transport's own create_channel (auth plugin, default host for the JWT audience), without TLS."""
    kwargs["ssl_credentials"] = grpc.local_channel_credentials()
    return KeyManagementServiceGrpcTransport.create_channel(host, **kwargs)


def kms_client(endpoint: str, credentials: Any) -> kms_v1.KeyManagementServiceClient:
    return kms_v1.KeyManagementServiceClient(
        credentials=credentials,
        client_options={"api_endpoint": endpoint},
        transport=functools.partial(KeyManagementServiceGrpcTransport, channel=loopback_channel),
    )


def credentials(gcp: GcpServer, principal: str = "admin") -> service_account.Credentials:
    return service_account.Credentials.from_service_account_info(gcp.service_account_info(principal))


def client(gcp: GcpServer, principal: str = "admin", creds: Any = None) -> kms_v1.KeyManagementServiceClient:
    return kms_client(gcp.endpoint, creds or credentials(gcp, principal))


def put_version_policy(gcp: GcpServer, project: str, version_alias: str, statements: list[dict[str, Any]]) -> None:
    """As principal ``owner`` (whose AWS-wire account is ``project``), the key policy of the keystore key behind a
    crypto key version (``gcp/<location>/<ring>/<key>/<version>``): the account's root may do everything, then
    ``statements``. Key policies live on versions' keystore keys and are set through the AWS wire."""
    secrets = yaml.safe_load(gcp.server.credentials_file("owner").read_text())
    aws = boto3.client("kms", endpoint_url=gcp.server.endpoint, region_name="us-east-1",
                       aws_access_key_id=secrets["access_key"],
                       aws_secret_access_key=secrets["secret_key"])  # fmt: skip
    key_id = aws.describe_key(KeyId=f"alias/{version_alias}")["KeyMetadata"]["KeyId"]
    root = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{project}:root"}, "Action": "kms:*", "Resource": "*"}
    aws.put_key_policy(KeyId=key_id, PolicyName="default",
                       Policy=json.dumps({"Version": "2012-10-17", "Statement": [root, *statements]}))  # fmt: skip
