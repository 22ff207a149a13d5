"""v1.0 imported key material (origin external): get-parameters-for-import, import and delete."""

from __future__ import annotations

from datetime import UTC, datetime

from kubekms.errors import InvalidArgument
from kubekms.server.v1_call import Call, JsonAnswer
from kubekms.server.v1_call import KeyScope as KeyScope  # re-exported: the pipeline and the console read it here
from kubekms.wire.v1 import answers as v1_answers

# --------------------------------------------------------------------- imported key material (origin external)

IMPORT_WRAPPING = ("RSAES_OAEP_SHA_256", "RSA_2048")  # Huawei's (its SM2_ENCRYPT: no SM2 here); 256-byte wraps
IMPORT_BLOB_BYTES = 6144
MAX_EPOCH_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z


async def get_parameters_for_import(call: Call) -> JsonAnswer:
    algorithm = call.fields.text("wrapping_algorithm", required=True, max_chars=32)
    if algorithm != IMPORT_WRAPPING[0]:
        raise InvalidArgument(f"wrapping_algorithm must be {IMPORT_WRAPPING[0]}", code="KMS.0308")
    parameters = await call.backend.get_parameters_for_import(
        call.key_ref(), wrapping_algorithm=algorithm, wrapping_key_spec=IMPORT_WRAPPING[1]
    )
    return v1_answers.import_parameters_answer(parameters)


async def import_key_material(call: Call) -> JsonAnswer:
    """``expiration_time`` (epoch seconds, optional): when the material expires. Symmetric material only."""
    fields = call.fields
    if fields.has("encrypted_privatekey"):
        raise InvalidArgument("importing an asymmetric key's private key is not offered", code="KMS.0308")
    expires = fields.integer("expiration_time", code="KMS.0308", bounds=(1, MAX_EPOCH_SECONDS))
    await call.backend.import_key_material(
        call.key_ref(),
        fields.base64_bytes("import_token", max_bytes=IMPORT_BLOB_BYTES),
        fields.base64_bytes("encrypted_key_material", max_bytes=IMPORT_BLOB_BYTES),
        valid_to=None if expires is None else datetime.fromtimestamp(expires, UTC),
    )
    return {}


async def delete_imported_key_material(call: Call) -> JsonAnswer:
    await call.backend.delete_imported_key_material(call.key_ref())
    return {}
