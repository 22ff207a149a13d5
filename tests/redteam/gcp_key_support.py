"""Reading a Cloud KMS crypto key back over the real gRPC wire, as the admin principal."""

from __future__ import annotations

from google.cloud import kms_v1
from redteam_harness import bearer, raw_call

from kubekms.devenv.gcpserver import GcpServer


def crypto_key_labels(gcp: GcpServer, name: str) -> dict[str, str]:
    get = kms_v1.GetCryptoKeyRequest(name=name)
    code, answer = raw_call(gcp, "GetCryptoKey", kms_v1.GetCryptoKeyRequest.serialize(get), bearer(gcp))
    assert isinstance(answer, bytes), (code, answer)
    return dict(kms_v1.CryptoKey.deserialize(answer).labels)
