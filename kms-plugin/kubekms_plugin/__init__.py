"""kubekms_plugin: the KMS v2 gRPC plugin for kube-apiserver."""
