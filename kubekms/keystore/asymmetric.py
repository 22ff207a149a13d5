"""The cryptography of asymmetric and HMAC keys, by AWS's spec and algorithm names, on ``cryptography``.

Private keys are PKCS #8 DER (what the keystore seals, and what GenerateDataKeyPair hands out);
public keys DER SubjectPublicKeyInfo; ECDSA signatures DER, RSASSA-PSS with a salt as long as the
digest, RSAES-OAEP with MGF1 over the same hash: AWS KMS's choices, so its clients interoperate.
"""

from __future__ import annotations

import os
from typing import TypeAlias

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from kubekms.backend import ECC_KEY_SPECS, HMAC_KEY_SPECS, RSA_KEY_SPECS, key_algorithms
from kubekms.errors import InvalidArgument, InvalidCiphertext, Reason

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

_CURVES: dict[str, type[ec.EllipticCurve]] = {
    "ECC_NIST_P256": ec.SECP256R1,
    "ECC_NIST_P384": ec.SECP384R1,
    "ECC_SECG_P256K1": ec.SECP256K1,
}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA_1": hashes.SHA1,
    "SHA_224": hashes.SHA224,
    "SHA_256": hashes.SHA256,
    "SHA_384": hashes.SHA384,
    "SHA_512": hashes.SHA512,
}


def new_material(key_spec: str) -> bytes:
    """Fresh key material of a spec: a PKCS #8 DER private key, or random bytes (HMAC keys as long as their hash)."""
    if key_spec in RSA_KEY_SPECS:
        private: PrivateKey = rsa.generate_private_key(65537, int(key_spec.removeprefix("RSA_")))
    elif key_spec in ECC_KEY_SPECS:
        private = ec.generate_private_key(_CURVES[key_spec]())
    elif key_spec in HMAC_KEY_SPECS:
        return os.urandom(int(key_spec.removeprefix("HMAC_")) // 8)
    else:
        return os.urandom(32)  # AES-256
    return private.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())  # fmt: skip


def load_private(material: bytes) -> PrivateKey:
    private = serialization.load_der_private_key(material, password=None)
    if not isinstance(private, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise TypeError(f"unexpected private key type {type(private).__name__}")
    return private


def public_der(private: PrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def check_algorithm(key_id: str, key_spec: str, key_usage: str, algorithm: str) -> None:
    """The algorithm must be one the key answers to (InvalidKeyUsageException on AWS)."""
    allowed = key_algorithms(key_spec, key_usage)
    if algorithm not in allowed:
        raise InvalidArgument(
            f"key {key_id} ({key_spec}, {key_usage}) does not support algorithm {algorithm!r};"
            f" it supports {', '.join(allowed)}",
            reason=Reason.KEY_USAGE_INVALID,
        )


def _hash(algorithm: str) -> hashes.HashAlgorithm:
    """The hash an AWS algorithm name ends with: ``..._SHA_256`` -> SHA-256."""
    return _HASHES["SHA_" + algorithm.rsplit("_", 1)[1]]()


def _rsa_padding(algorithm: str, chosen: hashes.HashAlgorithm) -> padding.AsymmetricPadding:
    if algorithm.startswith("RSASSA_PSS_"):
        return padding.PSS(mgf=padding.MGF1(chosen), salt_length=padding.PSS.DIGEST_LENGTH)
    return padding.PKCS1v15()


def _scheme(message: bytes, chosen: hashes.HashAlgorithm, digest: bool) -> hashes.HashAlgorithm | utils.Prehashed:
    """What ``cryptography`` signs with: the hash, or (a DIGEST message) the hash already applied."""
    if not digest:
        return chosen
    if len(message) != chosen.digest_size:
        raise InvalidArgument(
            f"a DIGEST message for {chosen.name} is {chosen.digest_size} bytes, got {len(message)}",
            reason=Reason.KEY_USAGE_INVALID,
        )
    return utils.Prehashed(chosen)


def sign(private: PrivateKey, algorithm: str, message: bytes, *, digest: bool) -> bytes:
    chosen = _hash(algorithm)
    scheme = _scheme(message, chosen, digest)
    if isinstance(private, rsa.RSAPrivateKey):
        return private.sign(message, _rsa_padding(algorithm, chosen), scheme)
    return private.sign(message, ec.ECDSA(scheme))


def verify(public: PublicKey, algorithm: str, message: bytes, signature: bytes, *, digest: bool) -> bool:
    chosen = _hash(algorithm)
    scheme = _scheme(message, chosen, digest)
    try:
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, message, _rsa_padding(algorithm, chosen), scheme)
        else:
            public.verify(signature, message, ec.ECDSA(scheme))
    except InvalidSignature:
        return False
    return True


def _oaep(algorithm: str) -> padding.OAEP:
    chosen = _hash(algorithm)
    return padding.OAEP(mgf=padding.MGF1(chosen), algorithm=chosen, label=None)


def encrypt(public: PublicKey, algorithm: str, plaintext: bytes) -> bytes:
    if not isinstance(public, rsa.RSAPublicKey):
        raise InvalidArgument("only RSA keys encrypt", reason=Reason.KEY_USAGE_INVALID)
    chosen = _hash(algorithm)
    most = public.key_size // 8 - 2 * chosen.digest_size - 2  # RFC 8017's bound for OAEP
    if not 1 <= len(plaintext) <= most:
        raise InvalidArgument(
            f"{algorithm} under a {public.key_size}-bit key encrypts 1 to {most} bytes, got {len(plaintext)}",
            reason=Reason.PLAINTEXT_LENGTH_INVALID,
        )
    return public.encrypt(plaintext, _oaep(algorithm))


def decrypt(private: PrivateKey, algorithm: str, ciphertext: bytes) -> bytes:
    if not isinstance(private, rsa.RSAPrivateKey):
        raise InvalidArgument("only RSA keys decrypt", reason=Reason.KEY_USAGE_INVALID)
    try:
        return private.decrypt(ciphertext, _oaep(algorithm))
    except ValueError:
        raise InvalidCiphertext("the ciphertext does not decrypt under this key and algorithm") from None


def mac(material: bytes, algorithm: str, message: bytes) -> bytes:
    tag = hmac.HMAC(material, _hash(algorithm))
    tag.update(message)
    return tag.finalize()


def verify_mac(material: bytes, algorithm: str, message: bytes, expected: bytes) -> bool:
    tag = hmac.HMAC(material, _hash(algorithm))
    tag.update(message)
    try:
        tag.verify(expected)
    except InvalidSignature:
        return False
    return True
