"""The KMS v1.0 wire's value formats, shared by its request parsing, answers and client.

Wire facts (see design/kms-rest-v1-wire.md): every KeyDetails field is a string, times are
epoch **milliseconds**, ``key_state`` is "1".."5" or "7" (frozen), numbers arrive as strings
(Huawei SDK) or ints (otcextensions), binary fields are hex. Every request value is parsed by
:mod:`kubekms.wire.inputs` (the strict edge shared with the AWS wire).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kubekms.backend import KeyState, check_encryption_context
from kubekms.errors import InvalidArgument
from kubekms.wire import inputs

JsonObject = dict[str, Any]

MAX_KEY_ID_LENGTH = 255
MAX_AAD_BYTES = 128  # the wire's limit on additional_authenticated_data
MAX_TEXT_CHARS = 8192  # any other string field (descriptions, specs, tags are checked tighter by the keystore)
MAX_HEX_CHARS = 2 * 8192  # hex fields: data keys with digest, ciphertexts
INT_BOUNDS = (-(2**63), 2**63 - 1)  # integer fields before their own range check: 64 bits
DIGEST_SIZE = hashlib.sha256().digest_size


def to_millis(moment: datetime | None) -> str:
    return "" if moment is None else str(int(moment.timestamp() * 1000))


def from_millis(value: object) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return datetime.fromtimestamp(int(str(value)) / 1000, tz=UTC)
    except (TypeError, ValueError, OverflowError):
        raise InvalidArgument(f"expected epoch milliseconds, got {value!r}") from None


def to_bool_text(value: bool) -> str:
    return "true" if value else "false"


def from_bool(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def parse_integer(value: object, name: str, *, code: str = "KMS.0308", bounds: tuple[int, int] = INT_BOUNDS) -> int:
    """An integer given as a JSON int or a string of ASCII digits; never a bool or a float."""
    return inputs.integer(value, name, bounds, allow_text=True, error=invalid(code))


def invalid(code: str) -> inputs.ErrorFactory:
    return functools.partial(InvalidArgument, code=code)


def encryption_context_aad(context: Mapping[str, str], *, opening: bool = False) -> bytes:
    """One canonical byte string per context, whatever the key order the client sent. A context with an
    empty key seals nothing new, but opening what one sealed before that rule stays possible."""
    if not opening:
        check_encryption_context(context)
    return json.dumps(dict(context), sort_keys=True, separators=(",", ":")).encode()


# Huawei's documented key_state values -> our KeyState. "7" (frozen: the cloud froze the key, e.g.
# for arrears; the owner can neither use nor enable it) maps to PENDING_ACTIVATION, the state of a
# key that is not usable and not the owner's to switch on: DISABLED would make the operator call
# enable-key on it to "correct drift", which the cloud refuses.
KEY_STATES_FROM_WIRE = {
    "1": KeyState.PENDING_ACTIVATION,
    "2": KeyState.ENABLED,
    "3": KeyState.DISABLED,
    "4": KeyState.PENDING_DELETION,
    "5": KeyState.PENDING_IMPORT,
    "7": KeyState.PENDING_ACTIVATION,
}
FROZEN_KEY_STATE = "7"


def key_state_from_wire(value: object, *, code: str = "KMS.0308") -> KeyState:
    """A KeyDetails ``key_state`` from a server: Huawei's documented values, and our ``destroyed``."""
    state = KEY_STATES_FROM_WIRE.get(str(value))
    if state is not None:
        return state
    if value == KeyState.DESTROYED.value:
        return KeyState.DESTROYED
    raise InvalidArgument(f"key_state must be one of 1-5 or 7, got {str(value)[:16]!r}", code=code)


# Huawei's key_spec names -> the keystore's (the same name where not listed). Huawei's SM4, SM2,
# ED25519 and HMAC_SM3 keys have no keystore spec; the keystore's own names (ECC_NIST_P256, HMAC_224)
# are accepted as well, a kubekms extension.
KEY_SPECS_FROM_WIRE = {"EC_P256": "ECC_NIST_P256", "EC_P384": "ECC_NIST_P384", "SECP256K1": "ECC_SECG_P256K1"}
WIRE_KEY_SPECS = {keystore: wire for wire, keystore in KEY_SPECS_FROM_WIRE.items()}
SIGN_MESSAGE_BYTES = 4096  # sign/verify/generate-mac/verify-mac message: Huawei's limit
SIGNATURE_BYTES = 6144  # verify signature, verify-mac mac
LIST_EVERY_KEY_SPEC = "ALL"  # list-keys key_spec: every key, asymmetric ones included
MESSAGE_TYPES = ("DIGEST", "RAW")  # sign/verify message_type; Huawei's default is DIGEST (AWS's is RAW)


def wire_key_spec(key_spec: str) -> str:
    """The v1.0 wire's name of a keystore key spec: ECC_NIST_P256 is EC_P256, ..."""
    return WIRE_KEY_SPECS.get(key_spec, key_spec)


def keystore_key_spec(wire_spec: str) -> str:
    """The keystore's name of a v1.0 wire key spec (the inverse of :func:`wire_key_spec`)."""
    return KEY_SPECS_FROM_WIRE.get(wire_spec, wire_spec)
