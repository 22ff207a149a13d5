"""A key policy whose JSON names a member twice means what the last one says here, and what the first says to a
reader or tool that keeps the first: ``{"Effect": "Deny", ..., "Effect": "Allow"}`` is stored as given, shown as
given by GetKeyPolicy (a reviewer sees the Deny first), and evaluated as Allow. Such an ambiguous document should
be refused (MalformedPolicyDocumentException) instead of stored. Real server, raw SigV4 requests (boto3 sends a
str policy as it is, so the duplicate reaches the server)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from s9_support import aws_call

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server

PROJECT = "default"  # the AWS wire's account for the admin
READER = Principal("reader", actions=("describe-key",), keys=("s9k-none",), projects=(PROJECT,))
ROOT = '{"AWS": "arn:aws:iam::default:root"}'
READER_ARN = '{"AWS": "arn:aws:iam::default:user/reader"}'
AMBIGUOUS = (
    '{"Version": "2012-10-17", "Statement": ['
    f'{{"Effect": "Allow", "Principal": {ROOT}, "Action": "kms:*", "Resource": "*"}}, '
    f'{{"Effect": "Deny", "Principal": {READER_ARN}, "Action": "kms:DescribeKey", "Resource": "*", "Effect": "Allow"}}'
    "]}"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("s9k"), project_id=PROJECT, principals=(READER,)) as running:
        yield running


def test_a_policy_naming_a_member_twice_is_refused(server: KMSServer) -> None:
    status, made = aws_call(server, "admin", "CreateKey", {})
    assert status == 200, made
    key_id = made["KeyMetadata"]["KeyId"]
    status, answer = aws_call(server, "admin", "PutKeyPolicy", {"KeyId": key_id, "PolicyName": "default",
                                                                "Policy": AMBIGUOUS})  # fmt: skip
    assert (status, answer.get("__type")) == (400, "MalformedPolicyDocumentException"), answer
    # what it would mean if stored: the reader, denied first, is allowed
    status, answer = aws_call(server, "reader", "DescribeKey", {"KeyId": key_id})
    assert status != 200, answer
