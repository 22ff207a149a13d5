"""The key list names every key the visitor may read the aliases of, also one made without a primary alias."""

from __future__ import annotations

import re
from pathlib import Path

from console_harness import ConsoleHttp, credentials, start_server


def test_a_key_named_after_its_creation_is_listed_by_its_alias(tmp_path: Path) -> None:
    """The AWS wire's CreateKey makes a key with no primary alias, CreateAlias names it afterwards: the list
    showed it as "(no alias)"; a principal who may not read its aliases still gets that, and no alias."""
    server = start_server(tmp_path)
    try:
        aws = server.aws_client()
        named = aws.create_key()["KeyMetadata"]["KeyId"]
        aws.create_alias(AliasName="alias/payments-dr", TargetKeyId=named)
        unnamed = aws.create_key()["KeyMetadata"]["KeyId"]
        console = ConsoleHttp(server.endpoint)
        assert console.sign_in(*credentials(server, "admin")).status_code == 303
        page = console.get("/console/p/default/keys").text
        assert re.search(rf'/keys/{named}">payments-dr</a>', page), page
        assert re.search(rf'/keys/{unnamed}">\(no alias\)</a>', page)
    finally:
        server.stop()


def test_without_list_aliases_the_list_shows_no_alias_it_may_not_read(tmp_path: Path) -> None:
    """The harness's ``reader`` may list and describe keys, not read their aliases."""
    server = start_server(tmp_path)
    try:
        aws = server.aws_client()
        named = aws.create_key()["KeyMetadata"]["KeyId"]
        aws.create_alias(AliasName="alias/secret-name", TargetKeyId=named)
        console = ConsoleHttp(server.endpoint)
        assert console.sign_in(*credentials(server, "reader")).status_code == 303
        page = console.get("/console/p/default/keys")
        assert page.status_code == 200 and named in page.text
        assert "secret-name" not in page.text
    finally:
        server.stop()
