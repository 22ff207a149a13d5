"""What the asymmetric and HMAC key tests share: the AWS error code of a refused boto3 call."""

from __future__ import annotations

from typing import Any

import botocore.exceptions
import pytest
from aws_policy_support import refused


def refusal(call: Any, **fields: Any) -> str:
    """The AWS error code ``call(**fields)`` is refused with (the test fails if it succeeds)."""
    with pytest.raises(botocore.exceptions.ClientError) as raised:
        call(**fields)
    return refused(raised)[0]
