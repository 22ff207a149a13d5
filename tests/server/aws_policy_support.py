"""boto3 clients of a running kubekms server for the key policy and alias tests, and their error codes."""

from __future__ import annotations

import json
from typing import Any

import botocore.exceptions
import pytest

from kubekms.devenv.kmsserver import KMSServer

REGION = "eu-west-1"


def boto_kms(server: KMSServer, principal: str = "admin", region: str = REGION) -> Any:
    return server.aws_client(principal, region=region)


def refused(raised: pytest.ExceptionInfo[botocore.exceptions.ClientError]) -> tuple[str, str]:
    """The AWS error code and message of a refused call."""
    error = raised.value.response["Error"]
    return str(error["Code"]), str(error["Message"])


def policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def account_root(account: str = "default") -> dict[str, Any]:
    """The default policy's statement: the account, through each principal's own permissions, controls the key."""
    return {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:*", "Resource": "*"}


def user(name: str, account: str = "default") -> dict[str, str]:
    return {"AWS": f"arn:aws:iam::{account}:user/{name}"}
