"""The kubekms server: the KMS v1.0 REST wire over the embedded keystore, one keystore per project."""
