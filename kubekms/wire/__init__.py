"""What the server's wires and the clients of those wires share, below providers and server.

:mod:`.inputs` (the strict parsers of every request value, both server wires), :mod:`.v1`
(the Huawei/OTC KMS v1.0 REST wire: values, server-side fields, client request bodies,
answers, errors), :mod:`.signing` (its SDK-HMAC-SHA256 signatures, both sides),
:mod:`.aws_errors` and :mod:`.aws_rules` (the AWS KMS wire's error types and limits, shared
by the server's AWS wire and the ``aws`` provider). SigV4 verification is server side
(:mod:`kubekms.server.sigv4`): nothing here imports the AWS SDK.
"""
