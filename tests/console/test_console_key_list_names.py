"""The key list names every key the visitor may read the aliases of, also one made without a primary alias;
the key page's actions line up."""

from __future__ import annotations

import re
from pathlib import Path

from console_harness import PROJECT, ConsoleHttp, api, credentials, sign_in, start_server
from playwright.sync_api import BrowserContext

from kubekms.devenv.kmsserver import KMSServer


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


def test_the_key_pages_action_buttons_line_up(context: BrowserContext, server: KMSServer) -> None:
    """ "Schedule deletion…" is a link styled as a button: it was taller than the buttons beside it, its label
    at the top instead of centred."""
    key = api(server, "create_key", "aligned-key")
    page = sign_in(context, server)
    page.goto(f"{server.endpoint}/console/p/{PROJECT}/keys/{key.key_id}")
    actions = page.get_by_role("region", name="Actions")
    rotate = actions.get_by_role("button", name="Rotate now").bounding_box()
    delete = actions.get_by_role("link", name="Schedule deletion…").bounding_box()
    assert rotate and delete
    assert abs(delete["height"] - rotate["height"]) <= 1, (rotate, delete)
    assert abs((delete["y"] + delete["height"] / 2) - (rotate["y"] + rotate["height"] / 2)) <= 1, (rotate, delete)
