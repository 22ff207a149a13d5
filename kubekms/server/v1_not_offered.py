"""Huawei KMS operations this wire knows and does not offer: refused by name and reason (KMS.0201, as an unknown
path, so a client's handling is unchanged), so an SDK user reads "not offered" rather than "unknown path"."""

from __future__ import annotations

import re

from kubekms.errors import InvalidArgument

NOT_OFFERED_CODE = "KMS.0201"
_ENCLAVE = "it serves Huawei's Qingtian enclaves (attestation documents), which kubekms has no counterpart of"

# the first segment after /kms/ -> (Huawei's SDK operation, why kubekms does not offer it)
NOT_OFFERED: dict[str, tuple[str, str]] = {
    "access-points": ("access points (list/create/delete/enable/disable_access_point)",
                      "kubekms has one endpoint per server; there are no access points to manage"),
    "create-pin": ("create_pin", "PIN protection is for Huawei's level-4 cryptographic assessment HSMs"),
    "datakey-capsule": ("create_datakey_capsule / decrypt_datakey_capsule", _ENCLAVE),
    "derive-shared-secret": ("derive_shared_secret", "kubekms's ECC keys sign and verify only (no ECDH key agreement)"),
    "key-policies": ("key-policies (create/list/show/update/delete_key_policy)",
                     f"Huawei's key-policies are standalone policies for datakey capsules ({_ENCLAVE}); a kubekms "
                     "key's own policy is AWS's document, set with PutKeyPolicy on the AWS wire"),
}  # fmt: skip


def refuse_if_known(tail: str) -> None:
    """Raise the precise refusal when ``tail`` (the path after ``kms/``) is a Huawei operation not offered here."""
    known = NOT_OFFERED.get(tail.split("/", 1)[0])
    if known is not None:
        operation, why = known
        raise InvalidArgument(f"Huawei's {operation} is not offered by kubekms: {why}", code=NOT_OFFERED_CODE)


# paths outside /v1.0/{project_id}/kms/ that Huawei's SDKs call: (the path's pattern, Huawei's operation, why)
_OTHER_PATHS: tuple[tuple[re.Pattern[str], str, str], ...] = (
    (re.compile(r"/v1\.0/[^/]+/keystores(?:/.*)?"), "key stores (list/create/show/delete/enable/disable_key_store)",
     "kubekms has one key store per project, its own; dedicated HSM clusters (DEW) have no counterpart"),
    (re.compile(r"/v2/[^/]+/kms/keys/[^/]+/(?:replicate|update-primary-region)"),
     "cross-region keys (replicate_key, update_primary_region)", "a kubekms server serves one region"),
    (re.compile(r"/v2/[^/]+/kms/regions"), "list_support_regions", "a kubekms server serves one region"),
)  # fmt: skip


def refusal_for_path(path: str) -> InvalidArgument | None:
    """The precise refusal of a Huawei path outside the v1.0 wire's (key stores, the v2 region calls), or None."""
    for pattern, operation, why in _OTHER_PATHS:
        if pattern.fullmatch(path):
            return InvalidArgument(f"Huawei's {operation} is not offered by kubekms: {why}", code=NOT_OFFERED_CODE)
    return None
