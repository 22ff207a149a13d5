"""The KMS action (``kms:<Operation>``) a call is evaluated as, whatever wire it came on.

Every wire names the permission its call needs (the v1.0 operation names principals grant; the
AWS wire adds a few of its own); each maps onto the AWS action of the same effect, so one key
policy governs all wires. AWS's ListKeyRotations shares GetKeyRotationStatus's permission and so
its action. ReEncrypt and UpdateAlias name a second key, authorised separately; v1.0's update-key-alias
(a rename, one key) is evaluated as UpdateAlias on that key.
"""

from __future__ import annotations

# every wire's permission (the v1.0 operation names, and the AWS wire's own) -> the AWS action
ACTION_BY_PERMISSION: dict[str, str] = {
    "create-key": "kms:CreateKey",
    "list-keys": "kms:ListKeys",
    "list-keys-by-tags": "kms:ListKeys",
    "list-kms-tags": "kms:ListKeys",  # account-wide reads: never evaluated on a key today
    "user-instances": "kms:ListKeys",
    "user-quotas": "kms:ListKeys",
    "describe-key": "kms:DescribeKey",
    "enable-key": "kms:EnableKey",
    "disable-key": "kms:DisableKey",
    "schedule-key-deletion": "kms:ScheduleKeyDeletion",
    "cancel-key-deletion": "kms:CancelKeyDeletion",
    "update-key-description": "kms:UpdateKeyDescription",
    "enable-key-rotation": "kms:EnableKeyRotation",
    "disable-key-rotation": "kms:DisableKeyRotation",
    "update-key-rotation-interval": "kms:EnableKeyRotation",
    "get-key-rotation-status": "kms:GetKeyRotationStatus",
    "rotate-on-demand": "kms:RotateKeyOnDemand",
    "create-datakey": "kms:GenerateDataKey",
    "create-datakey-without-plaintext": "kms:GenerateDataKeyWithoutPlaintext",
    "encrypt-datakey": "kms:Encrypt",
    "decrypt-datakey": "kms:Decrypt",
    "encrypt-data": "kms:Encrypt",
    "decrypt-data": "kms:Decrypt",
    "create-alias": "kms:CreateAlias",
    "delete-alias": "kms:DeleteAlias",
    "list-aliases": "kms:ListAliases",
    "list-key-tags": "kms:ListResourceTags",
    "create-key-tag": "kms:TagResource",
    "batch-key-tags": "kms:TagResource",
    "delete-key-tag": "kms:UntagResource",
    "gen-random": "kms:GenerateRandom",
    "update-alias": "kms:UpdateAlias",
    # Huawei's update-key-alias renames the key's own alias (Huawei's IAM: kms:cmk:update); here it is an alias
    # change on one key, so the alias action key policies already write for alias moves (never a key list's)
    "update-key-alias": "kms:UpdateAlias",
    "re-encrypt": "kms:ReEncryptFrom",  # on the source key; kms:ReEncryptTo on the destination
    "put-key-policy": "kms:PutKeyPolicy",
    "get-key-policy": "kms:GetKeyPolicy",
    "list-key-policies": "kms:ListKeyPolicies",
    "create-grant": "kms:CreateGrant",
    "list-grants": "kms:ListGrants",
    "list-retirable-grants": "kms:ListRetirableGrants",
    "retire-grant": "kms:RetireGrant",
    "revoke-grant": "kms:RevokeGrant",
    "sign": "kms:Sign",
    "verify": "kms:Verify",
    "get-publickey": "kms:GetPublicKey",
    "generate-mac": "kms:GenerateMac",
    "verify-mac": "kms:VerifyMac",
    "create-datakey-pair": "kms:GenerateDataKeyPair",
    "create-datakey-pair-without-plaintext": "kms:GenerateDataKeyPairWithoutPlaintext",
    "create-rsa-datakey-pair": "kms:GenerateDataKeyPair",  # v1.0: with_plain_text false too (one permission)
    "create-ec-datakey-pair": "kms:GenerateDataKeyPair",
    "get-parameters-for-import": "kms:GetParametersForImport",
    "import-key-material": "kms:ImportKeyMaterial",
    "delete-imported-key-material": "kms:DeleteImportedKeyMaterial",
}


def policy_action(permission: str) -> str:
    return ACTION_BY_PERMISSION.get(permission, f"kms:{permission}")
