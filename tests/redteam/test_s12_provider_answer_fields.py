"""The REST providers refuse an answer whose fields have the wrong types as a KMSError, never a bare exception.

test_s12_provider_answer_shape covers an answer that is no JSON object at all; here the object
is there but a field in it is not what the wire says (a string where an object, a list or a
number belongs). The decoders raised AttributeError, TypeError, ValueError or KeyError past
callers that handle KMSError only (plugin: traceback and gRPC INTERNAL; operator: a traceback per
retry; CLI: a traceback), or the wire's value parsers' InvalidArgument, which blames the caller's
request for the backend's answer. Our server never answers so, hence the aiohttp app standing in for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from fake_backends import KEY_ID, answering, rest_client

from kubekms.errors import Unavailable
from kubekms.providers.rest import RestBackend

DETAILS = {"key_id": KEY_ID, "key_state": "2", "creation_date": "1502799822000"}

Call = Callable[[RestBackend], Awaitable[object]]
CASES: list[tuple[str, Call, object]] = [
    ("key_info a string", lambda c: c.describe_key(KEY_ID), {"key_info": "x"}),
    ("creation_date a word", lambda c: c.describe_key(KEY_ID), {"key_info": {**DETAILS, "creation_date": "soon"}}),
    ("current_version a word", lambda c: c.describe_key(KEY_ID), {"key_info": {**DETAILS, "current_version": "v"}}),
    ("key_state missing", lambda c: c.describe_key(KEY_ID), {"key_info": {"key_id": KEY_ID}}),
    ("total a word", lambda c: c.list_keys(), {"key_details": [], "total": "many"}),
    ("key_details of strings", lambda c: c.list_keys(), {"key_details": ["x"], "total": 1}),
    ("rotation_interval a word", lambda c: c.get_rotation_status(KEY_ID), {"rotation_interval": "monthly"}),
    ("quota without its fields", lambda c: c.quotas(), {"quotas": {"resources": [{"type": "CMK"}]}}),
    ("quotas a list", lambda c: c.quotas(), {"quotas": ["CMK"]}),
    ("instance_num a word", lambda c: c.instance_count(), {"instance_num": "some"}),
    ("resources of strings", lambda c: c.find_keys_by_tag("t", "v"), {"resources": ["x"], "total_count": 1}),
    ("tags of strings", lambda c: c.list_tags(KEY_ID), {"tags": ["x"]}),
    ("tags without a key", lambda c: c.list_tags(KEY_ID), {"tags": [{"value": "v"}]}),
    ("aliases of strings", lambda c: c.list_aliases(KEY_ID), [{"aliases": ["x"]}]),
]


@pytest.mark.parametrize(("case", "call", "answer"), CASES, ids=[case for case, _, _ in CASES])
async def test_an_answer_with_fields_of_the_wrong_type_is_unavailable(case: str, call: Call, answer: object) -> None:
    async with rest_client(answering(answer)) as client:
        with pytest.raises(Unavailable, match="unexpected"):
            await call(client)
