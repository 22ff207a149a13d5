"""Request bodies: a body whose bytes prove it within the limits skips the tree walk, and never wrongly."""

from __future__ import annotations

import json
import random

import pytest

from kubekms.wire import inputs

HOSTILE = [
    b'{"KeyId":"\\ud800"}',  # a lone surrogate by escape: ASCII bytes
    b'{"a":' * 9 + b"1" + b"}" * 9,  # nine levels
    b'{"a":' + b"[" * 8 + b"]" * 8 + b"}",  # nine containers
    b'{"a":[' + b"0," * 25_000 + b"0]}",  # more values than the limit
    '{"KeyId":"é"}'.encode(),  # not ASCII: walked
]


@pytest.mark.parametrize("body", HOSTILE, ids=range(len(HOSTILE)))
def test_bodies_beyond_a_limit_are_never_taken_as_within_by_their_bytes(body: bytes) -> None:
    assert not inputs._within_limits_by_its_bytes(body)


def test_the_byte_check_never_passes_a_body_the_walk_refuses() -> None:
    rng = random.Random(15)
    passed = 0
    for _ in range(3000):
        body = json.dumps(_random_value(rng, 0), ensure_ascii=rng.random() < 0.5).encode(errors="surrogatepass")
        if not body.startswith(b"{"):
            continue
        data = json.loads(body)
        try:
            inputs._check_tree(data)
            walk_accepts = True
        except inputs.MalformedJson:
            walk_accepts = False
        if inputs._within_limits_by_its_bytes(body):
            passed += 1
            assert walk_accepts, body[:200]
    assert passed > 100  # the fast path is taken for ordinary bodies


def _random_value(rng: random.Random, depth: int) -> object:
    kind = rng.random()
    if depth > 10 or kind < 0.4:
        return rng.choice(["x", "é", "\ud800", "a\\u0041", 1, 2.5, None, True, "[{"])
    if kind < 0.7:
        return {f"k{index}": _random_value(rng, depth + 1) for index in range(rng.randint(0, 4))}
    return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]


def test_sdk_bodies_parse_as_before() -> None:
    body = json.dumps({"KeyId": "alias/app", "KeySpec": "AES_256", "EncryptionContext": {"a": "b"}}).encode()
    assert inputs._within_limits_by_its_bytes(body)
    assert inputs.json_object(body) == json.loads(body)
    with pytest.raises(inputs.MalformedJson, match="lone surrogate"):
        inputs.json_object(HOSTILE[0])
    with pytest.raises(inputs.MalformedJson, match="deeper"):
        inputs.json_object(HOSTILE[1])


AROUND = [b'{"a":1}', b'{"a":1} ', b'{"a":1}\n\t\r ', b'{"a":1}\x0b', b'{"a":1}\xc2\xa0', b'{"a":1}x', b'{"a":1}{}',
          b' {"a":1}', b'{"a":', b"{", b"{}", b'{"a":1}\x00', b'{"a":NaN}', b'{"a":' + b"1" * 25 + b"}",
          b'\xef\xbb\xbf{"a":1}', '{"a":1}\u2003'.encode(), b'{"a":1}\x1c']  # fmt: skip


@pytest.mark.parametrize("body", AROUND, ids=range(len(AROUND)))
def test_a_body_is_taken_or_refused_as_the_strict_decoder_takes_it(body: bytes) -> None:
    try:
        expected: object = inputs._DECODER.decode(body.decode("utf-8"))  # the whole text, JSON whitespace around
    except ValueError:
        expected = None
    try:
        parsed: object = inputs.json_object(body)
    except inputs.MalformedJson:
        parsed = None
    assert parsed == expected
