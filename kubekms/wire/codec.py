"""The KMS v1.0 wire's former single module, for callers of the old path (the web console).

The wire is :mod:`kubekms.wire.v1` now: values, fields (server request parsing), client
(request bodies), answers and errors, one module each.
"""

from __future__ import annotations

from kubekms.wire.v1.errors import error_status
from kubekms.wire.v1.fields import key_ref_text

__all__ = ["error_status", "key_ref_text"]
