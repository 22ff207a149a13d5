"""The embedded keystore engine behind provider ``local`` and the kubekms server."""

from kubekms.keystore.rootkey import KeystoreSetupError
from kubekms.keystore.store import DueWork, Keystore

__all__ = ["DueWork", "Keystore", "KeystoreSetupError"]
