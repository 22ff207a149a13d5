"""AWS KMS's own limits and ranges, once for both sides of the AWS wire.

The server's AWS wire (:mod:`kubekms.server.aws_operations`) refuses what AWS KMS would
refuse, and the ``aws`` provider (:mod:`kubekms.providers.aws_mapping`) checks the same
rules before a call leaves the process. The keystore's own limits are wider.
"""

from __future__ import annotations

import re

from kubekms.backend import HMAC_KEY_SPECS, SYMMETRIC_KEY_SPEC

PENDING_WINDOW_DAYS = (7, 30)  # ScheduleKeyDeletion PendingWindowInDays
ROTATION_PERIOD_DAYS = (90, 2560)  # EnableKeyRotation RotationPeriodInDays
DEFAULT_ROTATION_DAYS = 365
RANDOM_BYTES = (1, 1024)  # GenerateRandom NumberOfBytes
DATA_KEY_BYTES = (1, 1024)  # GenerateDataKey(WithoutPlaintext) NumberOfBytes
ENCRYPT_BYTES = (1, 4096)  # Encrypt Plaintext
CIPHERTEXT_BYTES = (1, 6144)  # Decrypt CiphertextBlob
LIST_KEYS_LIMIT = (1, 1000)  # ListKeys Limit
LIST_LIMIT = (1, 100)  # Limit of the other List* operations
ROTATIONS_LIMIT = (1, 1000)  # ListKeyRotations' Limit; it defaults to 100
KEY_POLICIES_LIMIT = (1, 1000)  # ListKeyPolicies' Limit; it defaults to 100
CMK_QUOTA = 100_000
ALIAS_PREFIX = "alias/"
RESERVED_ALIAS_PREFIX = "alias/aws/"  # AWS managed keys' aliases
KEY_POLICY_NAME = "default"  # the one policy of a key
POLICY_TEXT = re.compile(r"[\t\n\r\x20-\xff]+")  # botocore's PolicyType pattern, matched whole
ALIAS_NAME_PATTERN = re.compile(r"[a-zA-Z0-9/_-]{1,250}")  # after "alias/", matched whole
GRANT_NAME_CHARS = 256
GRANT_CONSTRAINT_PAIRS = 8  # encryption context pairs of a grant constraint
GRANT_CONSTRAINT_CHARS = 384  # a constraint's keys and values each (AWS: "cannot exceed 384 characters")
MAX_GRANT_TOKENS = 10  # GrantTokens of one request
GRANT_NAME_PATTERN = re.compile(r"[a-zA-Z0-9:/_-]+")
PRINCIPAL_ARN = re.compile(r"arn:aws:iam::[A-Za-z0-9_-]{1,64}:(root|(user|role)/[\w+=,.@/-]{1,512})")
SIGN_MESSAGE_BYTES = (1, 4096)  # Sign/Verify Message
SIGNATURE_BYTES = (1, 6144)  # Verify Signature
MAC_MESSAGE_BYTES = (1, 4096)  # GenerateMac/VerifyMac Message
MAC_BYTES = (1, 6144)  # VerifyMac Mac
MESSAGE_TYPES = ("RAW", "DIGEST")  # Sign/Verify MessageType
IMPORT_BLOB_BYTES = (1, 6144)  # ImportKeyMaterial ImportToken, EncryptedKeyMaterial
SYMMETRIC = "SYMMETRIC_DEFAULT"  # AWS's KeySpec (and EncryptionAlgorithm) of the keystore's AES_256 keys


def aws_key_spec(key_spec: str) -> str:
    """AWS's KeySpec for a keystore key spec: the symmetric one is SYMMETRIC_DEFAULT, the others keep their name."""
    return SYMMETRIC if key_spec == SYMMETRIC_KEY_SPEC else key_spec


def keystore_key_spec(aws_spec: str) -> str:
    return SYMMETRIC_KEY_SPEC if aws_spec == SYMMETRIC else aws_spec


def key_type(key_spec: str) -> str:
    """AWS's three key types (UpdateAlias keeps an alias within one, and within one key usage)."""
    if key_spec == SYMMETRIC_KEY_SPEC:
        return "symmetric"
    return "HMAC" if key_spec in HMAC_KEY_SPECS else "asymmetric"
