"""The wires' answers are written by json's C encoder made once: the text json.dumps(..., separators=(",", ":"))
writes, for every JSON value (unicode escaped, floats, nesting), and the same errors for what is not JSON."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubekms.server.http_messages import COMPACT_JSON

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)


# no per-example deadline: Hypothesis's 200 ms (a wall-clock bound) fails as Flaky when a loaded CI machine stalls once
NO_DEADLINE = settings(deadline=None)


@NO_DEADLINE
@given(values)
def test_the_text_is_what_json_dumps_writes(value: Any) -> None:
    assert COMPACT_JSON(value) == json.dumps(value, separators=(",", ":"))


def test_a_data_key_answer_and_odd_values_are_written_as_json_dumps_writes_them() -> None:
    answer = {
        "CiphertextBlob": "S0sBJDBmOGZhZDViLWQ5Y2ItNDY5Zi1hMTY1LTcwODY3NzI4OTUwZQAAAAE=",
        "Plaintext": "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=",
        "KeyId": "arn:aws:kms:us-east-1:default:key/0f8fad5b-d9cb-469f-a165-70867728950e",
        "CreationDate": 1733043600.123456,
        "Tags": [{"TagKey": "é\u2028\x00\ud800", "TagValue": '/\\"'}],
        "Numbers": [1e16, 1e-5, -0.0, math.inf, -math.inf, 2**70, (1, 2)],
    }
    assert COMPACT_JSON(answer) == json.dumps(answer, separators=(",", ":"))
    assert COMPACT_JSON("text") == json.dumps("text") and COMPACT_JSON(None) == "null"


def test_what_is_not_json_is_refused_as_json_dumps_refuses_it() -> None:
    for value in ({"when": object()}, {1.5j}, b"bytes"):
        with pytest.raises(TypeError) as ours:
            COMPACT_JSON(value)
        with pytest.raises(TypeError) as theirs:
            json.dumps(value, separators=(",", ":"))
        assert str(ours.value) == str(theirs.value)
