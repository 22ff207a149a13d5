"""v1.0 operations of asymmetric and HMAC keys: get-publickey, sign, verify, generate-mac, verify-mac."""

from __future__ import annotations

from kubekms.server.v1_call import Call, JsonAnswer
from kubekms.server.v1_call import KeyScope as KeyScope  # re-exported: the pipeline and the console read it here
from kubekms.wire.v1 import answers as v1_answers
from kubekms.wire.v1 import fields as v1_fields
from kubekms.wire.v1 import values as v1_values

# --------------------------------------------------------------------- asymmetric and HMAC keys (Backend's crypto)


async def get_publickey(call: Call) -> JsonAnswer:
    key_id = (await call.backend.describe_key(call.key_ref())).key_id
    return v1_answers.public_key_answer(key_id, await call.backend.get_public_key(key_id))


async def sign(call: Call) -> JsonAnswer:
    fields = call.fields
    message = fields.base64_bytes("message", max_bytes=v1_values.SIGN_MESSAGE_BYTES)
    algorithm = fields.text("signing_algorithm", required=True, max_chars=64)
    digest = v1_fields.message_is_digest(fields)
    return v1_answers.signature_answer(
        await call.backend.sign(call.key_ref(), message, algorithm=algorithm, digest=digest)
    )


async def verify(call: Call) -> JsonAnswer:
    fields = call.fields
    message = fields.base64_bytes("message", max_bytes=v1_values.SIGN_MESSAGE_BYTES)
    signature = fields.base64_bytes("signature", max_bytes=v1_values.SIGNATURE_BYTES)
    algorithm = fields.text("signing_algorithm", required=True, max_chars=64)
    digest = v1_fields.message_is_digest(fields)
    key_id = (await call.backend.describe_key(call.key_ref())).key_id
    valid = await call.backend.verify(key_id, message, signature, algorithm=algorithm, digest=digest)
    return v1_answers.signature_valid_answer(key_id, valid)


async def generate_mac(call: Call) -> JsonAnswer:
    message = call.fields.base64_bytes("message", max_bytes=v1_values.SIGN_MESSAGE_BYTES)
    algorithm = call.fields.text("mac_algorithm", required=True, max_chars=64)
    return v1_answers.mac_answer(
        await call.backend.generate_mac(call.key_ref(), message, algorithm=algorithm), algorithm
    )


async def verify_mac(call: Call) -> JsonAnswer:
    message = call.fields.base64_bytes("message", max_bytes=v1_values.SIGN_MESSAGE_BYTES)
    mac = call.fields.base64_bytes("mac", max_bytes=v1_values.SIGNATURE_BYTES)
    algorithm = call.fields.text("mac_algorithm", required=True, max_chars=64)
    key_id = (await call.backend.describe_key(call.key_ref())).key_id
    valid = await call.backend.verify_mac(key_id, message, mac, algorithm=algorithm)
    return v1_answers.mac_valid_answer(key_id, algorithm, valid)
