"""kubekms_operator: kopf handlers for KMSKey and KMSBackend."""
