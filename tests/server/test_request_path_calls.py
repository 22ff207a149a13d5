"""A request bound to its backend (AwsRequest.on) is the same request: every field copied, what was parsed shared."""

from __future__ import annotations

import dataclasses

from kubekms.server.aws_call import AwsCall, AwsRequest


def test_on_copies_every_field_and_shares_what_was_parsed() -> None:
    caller = object()
    request = AwsRequest(account="acct", region="eu-west-1", body={"KeyId": "alias/x"}, caller=caller)  # type: ignore[arg-type]
    assert request.key_ref() == "x"
    backend = object()
    call = request.on(backend)  # type: ignore[arg-type]
    assert type(call) is AwsCall
    for field in dataclasses.fields(AwsRequest):  # a field added later must be copied too
        assert getattr(call, field.name) is getattr(request, field.name), field.name
    assert call.backend is backend
    assert {field.name for field in dataclasses.fields(AwsCall)} == {f.name for f in dataclasses.fields(AwsRequest)} | {
        "backend"
    }
    request._parsed[("probe",)] = 1
    assert call._parsed[("probe",)] == 1  # one dict: what either parses, the other has
