"""34d5454's console key list names a key made without a primary alias by its first alias, reading the aliases
through the gate (key policies included) for every such key the visitor's key list allows. One key whose policy
denies the visitor ListAliases (its owner's choice) must not take the whole key list down for that visitor."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "console"))
from console_harness import ConsoleHttp, credentials, start_server

AWS_PROJECT = "default"  # the AWS wire's account for these principals (as tests/console/test_console_key_list_names.py)
KEYS_PAGE = f"/console/p/{AWS_PROJECT}/keys"


def test_a_key_whose_policy_denies_list_aliases_leaves_the_key_list_readable(tmp_path: Path) -> None:
    server = start_server(tmp_path / "state")
    try:
        aws = server.aws_client()
        guarded = aws.create_key()["KeyMetadata"]["KeyId"]
        aws.create_alias(AliasName="alias/s9-guarded-name", TargetKeyId=guarded)
        open_key = aws.create_key()["KeyMetadata"]["KeyId"]
        aws.create_alias(AliasName="alias/s9-open-name", TargetKeyId=open_key)
        account = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{AWS_PROJECT}:root"}, "Action": "kms:*",
                   "Resource": "*"}  # fmt: skip
        deny = {"Effect": "Deny", "Principal": {"AWS": f"arn:aws:iam::{AWS_PROJECT}:user/admin"},
                "Action": "kms:ListAliases", "Resource": "*"}  # fmt: skip
        aws.put_key_policy(KeyId=guarded, PolicyName="default", BypassPolicyLockoutSafetyCheck=True,
                           Policy=json.dumps({"Version": "2012-10-17", "Statement": [account, deny]}))  # fmt: skip
        client = ConsoleHttp.signed_in(server.endpoint, *credentials(server, "admin"))
        page = client.get(KEYS_PAGE)
        assert page.status_code == 200, (page.status_code, page.text[:300])
        assert guarded in page.text and open_key in page.text  # both listed (list-keys is account-wide)
        assert "s9-open-name" in page.text  # the one it may read is named
        assert "s9-guarded-name" not in page.text  # the denied one is not
    finally:
        server.stop()
