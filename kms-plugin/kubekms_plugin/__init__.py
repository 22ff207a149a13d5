"""kubekms_plugin: the KMS v2 gRPC plugin for kube-apiserver."""

# What the plugin's backend credential must be allowed to do, on its one key only: data keys
# for KEKs, and describe-key (the REST client's describe also reads the key's aliases and tags;
# provider aws reads the key version from the rotation list: get-key-rotation-status).
BACKEND_ACTIONS = (
    "create-datakey",
    "decrypt-datakey",
    "describe-key",
    "list-aliases",
    "list-key-tags",
    "get-key-rotation-status",
)
