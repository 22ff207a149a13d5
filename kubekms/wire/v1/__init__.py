"""The Huawei Cloud / OTC KMS v1.0 REST wire, one module per job.

:mod:`.values` (formats shared by all), :mod:`.fields` (server: request parsing),
:mod:`.client` (client: request bodies), :mod:`.answers` (answers, both directions),
:mod:`.errors` (status, body and ``KMS.xxxx`` code of a refusal, both directions).
"""
