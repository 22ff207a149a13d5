"""Cloud KMS's CryptoKeyVersionAlgorithms this server offers, as the keystore makes and uses their keys.

A crypto key's versions all have its algorithm (``version_template.algorithm``), and the purpose
follows from it: ENCRYPT_DECRYPT (GOOGLE_SYMMETRIC_ENCRYPTION, the keystore's AES_256),
ASYMMETRIC_SIGN (EC and RSA signing keys), ASYMMETRIC_DECRYPT (RSA OAEP keys) and MAC (HMAC keys).
The keystore's names for key specs, usages and algorithms are AWS's (:func:`kubekms.backend.key_algorithms`);
Cloud KMS's algorithms hash as AWS's of the same name do (PSS with a salt as long as the digest; OAEP with
MGF1 over the same hash).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.cloud import kms_v1

from kubekms.errors import InvalidArgument

Purpose = kms_v1.CryptoKey.CryptoKeyPurpose
Algorithm = kms_v1.CryptoKeyVersion.CryptoKeyVersionAlgorithm
SYMMETRIC = "GOOGLE_SYMMETRIC_ENCRYPTION"


@dataclass(frozen=True)
class KeyKind:
    """``digest``: the AsymmetricSign digest field (sha256, sha384, sha512) a signing key takes."""

    purpose: int  # a CryptoKeyPurpose
    key_spec: str
    key_usage: str
    algorithm: str  # the keystore's
    digest: str = ""


def _signing(key_spec: str, algorithm: str, digest: str) -> KeyKind:
    return KeyKind(Purpose.ASYMMETRIC_SIGN, key_spec, "SIGN_VERIFY", algorithm, digest)


def _decrypting(bits: int, digest: str) -> KeyKind:
    return KeyKind(Purpose.ASYMMETRIC_DECRYPT, f"RSA_{bits}", "ENCRYPT_DECRYPT", f"RSAES_OAEP_{digest}")


def _mac(bits: int) -> KeyKind:
    return KeyKind(Purpose.MAC, f"HMAC_{bits}", "GENERATE_VERIFY_MAC", f"HMAC_SHA_{bits}")


KINDS: dict[str, KeyKind] = {
    SYMMETRIC: KeyKind(Purpose.ENCRYPT_DECRYPT, "AES_256", "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT"),
    "EC_SIGN_P256_SHA256": _signing("ECC_NIST_P256", "ECDSA_SHA_256", "sha256"),
    "EC_SIGN_P384_SHA384": _signing("ECC_NIST_P384", "ECDSA_SHA_384", "sha384"),
    "EC_SIGN_SECP256K1_SHA256": _signing("ECC_SECG_P256K1", "ECDSA_SHA_256", "sha256"),
    **{f"RSA_SIGN_{scheme}_{bits}_SHA256": _signing(f"RSA_{bits}", f"RSASSA_{aws}_SHA_256", "sha256")
       for scheme, aws in (("PSS", "PSS"), ("PKCS1", "PKCS1_V1_5")) for bits in (2048, 3072, 4096)},
    "RSA_SIGN_PSS_4096_SHA512": _signing("RSA_4096", "RSASSA_PSS_SHA_512", "sha512"),
    "RSA_SIGN_PKCS1_4096_SHA512": _signing("RSA_4096", "RSASSA_PKCS1_V1_5_SHA_512", "sha512"),
    **{f"RSA_DECRYPT_OAEP_{bits}_{digest.replace('_', '')}": _decrypting(bits, digest)
       for bits in (2048, 3072, 4096) for digest in ("SHA_256", "SHA_1")},
    **{f"HMAC_SHA{bits}": _mac(bits) for bits in (224, 256, 384, 512)},
}  # fmt: skip
OFFERED_PURPOSES = (Purpose.ENCRYPT_DECRYPT, Purpose.ASYMMETRIC_SIGN, Purpose.ASYMMETRIC_DECRYPT, Purpose.MAC)


def kind_of(algorithm: str) -> KeyKind:
    """The kind of a crypto key's recorded algorithm name."""
    return KINDS[algorithm]


def algorithm_value(name: str) -> int:
    """The CryptoKeyVersionAlgorithm of a recorded algorithm name."""
    return int(getattr(Algorithm, name))


def enum_name(enum: Any, value: int) -> str:
    """The name of an enum value from the wire: proto3 enums are open, so a client may send a number none names."""
    try:
        return str(enum(value).name)
    except ValueError:
        return f"{value} (no {enum.__name__} value)"


def template_algorithm(purpose: int, algorithm: int) -> str:
    """The algorithm name a new crypto key of ``purpose`` gets from its version template; InvalidArgument if none."""
    if purpose not in OFFERED_PURPOSES:
        raise InvalidArgument(
            "this server offers CryptoKeys of purpose ENCRYPT_DECRYPT, ASYMMETRIC_SIGN, ASYMMETRIC_DECRYPT and MAC"
        )
    if algorithm == Algorithm.CRYPTO_KEY_VERSION_ALGORITHM_UNSPECIFIED:
        if purpose == Purpose.ENCRYPT_DECRYPT:
            return SYMMETRIC
        raise InvalidArgument(f"version_template.algorithm is required for purpose {enum_name(Purpose, purpose)}")
    name = enum_name(Algorithm, algorithm)
    kind = KINDS.get(name)
    if kind is None or kind.purpose != purpose:
        offered = ", ".join(n for n, k in KINDS.items() if k.purpose == purpose)
        raise InvalidArgument(f"version_template.algorithm {name} does not suit purpose {enum_name(Purpose, purpose)} "
                              f"on this server (offered: {offered})")  # fmt: skip
    return name
