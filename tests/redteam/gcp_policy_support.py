"""Shared by the Cloud KMS red-team tests: a version's key policy that denies some principals everything."""

from __future__ import annotations

import json
from collections.abc import Sequence

import boto3
import yaml

from kubekms.devenv.gcpserver import GcpServer


def deny_version(gcp: GcpServer, project: str, key: str, version: int, denied: Sequence[str]) -> None:
    """As principal ``owner`` (every key), deny ``denied`` everything on version ``version`` of ``key`` ("ring/key")
    of location global; the account keeps its say (the key lists decide for the others)."""
    credentials = yaml.safe_load(gcp.server.credentials_file("owner").read_text())
    aws = boto3.client("kms", endpoint_url=gcp.server.endpoint, region_name="us-east-1",
                       aws_access_key_id=credentials["access_key"],
                       aws_secret_access_key=credentials["secret_key"])  # fmt: skip
    key_id = aws.describe_key(KeyId=f"alias/gcp/global/{key}/{version}")["KeyMetadata"]["KeyId"]
    account = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{project}:root"}, "Action": "kms:*",
               "Resource": "*"}  # fmt: skip
    deny = {"Effect": "Deny", "Principal": {"AWS": [f"arn:aws:iam::{project}:user/{name}" for name in denied]},
            "Action": "kms:*", "Resource": "*"}  # fmt: skip
    aws.put_key_policy(KeyId=key_id, PolicyName="default",
                       Policy=json.dumps({"Version": "2012-10-17", "Statement": [account, deny]}))  # fmt: skip
