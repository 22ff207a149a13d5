"""kubekms: declarative KMS keys for Kubernetes, and KMS v2 encryption of etcd with the same keys."""

__version__ = "0.1.0"
