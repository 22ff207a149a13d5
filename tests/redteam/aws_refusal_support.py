"""Shared by the AWS-wire red-team tests: the error code botocore raised for a call that must be refused."""

from __future__ import annotations

from collections.abc import Callable

import botocore.exceptions
import pytest


def refused(call: Callable[[], object]) -> str:
    """The AWS error code (``__type``) of ``call``'s refusal; the test fails if the call succeeds."""
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call()
    return str(raised.value.response["Error"]["Code"])
