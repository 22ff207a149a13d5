"""Hostile input on every console form and URL over plain HTTP: a precise 4xx, never a 5xx, never a change."""

from __future__ import annotations

import random
from urllib.parse import quote

import pytest
from console_harness import ONLY_KEY, PROJECT, ConsoleHttp, api, credentials

from kubekms.backend import KeyState
from kubekms.devenv.kmsserver import KMSServer
from kubekms.server.console.actions import ACTIONS

FORM = "application/x-www-form-urlencoded"


@pytest.fixture(scope="module")
def key_id(server: KMSServer) -> str:
    return str(api(server, "describe_key", ONLY_KEY).key_id)


def post(http: ConsoleHttp, path: str, body: bytes | str, content_type: str = FORM) -> int:
    return http.post(path, data=body, headers={"Content-Type": content_type}).status_code


def test_malformed_bodies_are_refused_before_any_change(
    admin_http: ConsoleHttp, server: KMSServer, key_id: str
) -> None:
    path = f"/console/p/{PROJECT}/keys/{key_id}/disable"
    token = admin_http.csrf()
    bodies = {
        "json": (b'{"csrf": "%s"}' % token.encode(), "application/json"),
        "multipart": (b"--x\r\nContent-Disposition: form-data; name=csrf\r\n\r\n" + token.encode() + b"\r\n--x--",
                      "multipart/form-data; boundary=x"),
        "bad percent-encoding": (f"csrf={token}&x=%ff%fe".encode(), FORM),
        "lone surrogate": (f"csrf={token}&x=%ed%a0%80".encode(), FORM),
        "raw non-ASCII": (f"csrf={token}&x=\u00e9".encode(), FORM),
        "too many fields": ("&".join([f"csrf={token}"] + [f"f{i}=1" for i in range(100)]).encode(), FORM),
        "field twice": (f"csrf={token}&csrf={token}".encode(), FORM),
        "too large": (f"csrf={token}&x=".encode() + b"a" * (80 * 1024), FORM),
        "NUL": (f"csrf={token}%00".encode(), FORM),
    }  # fmt: skip
    for name, (body, content_type) in bodies.items():
        status = post(admin_http, path, body, content_type)
        assert 400 <= status < 500, (name, status)
    assert api(server, "describe_key", key_id).state is KeyState.ENABLED


@pytest.mark.parametrize(
    ("action", "fields", "code"),
    [
        ("schedule-deletion", {"pending_days": "abc", "confirm": ONLY_KEY}, "KMS.0308"),
        ("schedule-deletion", {"pending_days": "9" * 30, "confirm": ONLY_KEY}, "KMS.0308"),
        ("schedule-deletion", {"pending_days": "\u00b2", "confirm": ONLY_KEY}, "KMS.0308"),
        ("schedule-deletion", {"pending_days": "-7", "confirm": ONLY_KEY}, "KMS.0308"),
        ("schedule-deletion", {"pending_days": "1097", "confirm": ONLY_KEY}, "KMS.0308"),
        ("schedule-deletion", {"pending_days": "7"}, "KMS.1401"),
        ("rotation-on", {"rotation_interval": "0"}, "KMS.0308"),
        ("rotation-interval", {"rotation_interval": "\u0663"}, "KMS.0308"),
        ("add-alias", {"alias": "bad alias\x00"}, "KMS.1101"),
        ("add-alias", {"alias": "a" * 5000}, "KMS.0308"),
        ("add-alias", {"alias": ""}, "KMS.0308"),
        ("add-alias", {"alias": "gcp/global/ring/key/1"}, "reserved for Cloud KMS"),
        ("add-tag", {"tag_key": "k" * 129, "tag_value": "v"}, "KMS.04"),
        ("add-tag", {"tag_key": "", "tag_value": "v"}, "KMS.0308"),
        ("remove-alias", {"alias": "no-such-alias"}, "KMS."),
        ("remove-tag", {"tag_key": ""}, "KMS.0308"),
        ("description", {"description": "d" * 300}, "KMS.1103"),
        ("disable-version", {}, "KMS.0308"),
        ("disable-version", {"version": "0"}, "KMS.0308"),
        ("disable-version", {"version": "1e3"}, "KMS.0308"),
        ("disable-version", {"version": "99"}, "has no version 99"),
        ("disable-version", {"version": "1"}, "is the current version"),
        ("enable-version", {"version": str(2**40)}, "KMS.0308"),
    ],
)
def test_bad_values_get_a_precise_refusal(
    admin_http: ConsoleHttp, server: KMSServer, key_id: str, action: str, fields: dict[str, str], code: str
) -> None:
    answer = admin_http.post(f"/console/p/{PROJECT}/keys/{key_id}/{action}", data={"csrf": admin_http.csrf(), **fields})
    assert 400 <= answer.status_code < 500 and code in answer.text, (answer.status_code, answer.text[-600:])
    key = api(server, "describe_key", key_id)
    assert key.state is KeyState.ENABLED and key.aliases == (ONLY_KEY,) and not key.tags


def test_hostile_urls_and_queries(admin_http: ConsoleHttp, key_id: str) -> None:
    paths = [
        f"/console/p/{PROJECT}/keys/{'x' * 3000}",
        f"/console/p/{PROJECT}/keys/%00",
        f"/console/p/{PROJECT}/keys/%ed%a0%80",
        f"/console/p/{PROJECT}/keys/..%2f..%2fetc%2fpasswd",
        f"/console/p/{PROJECT}/keys/{quote('<script>')}",
        "/console/p/..%2f/keys",
        f"/console/p/{'p' * 65}/keys",
        "/console/p/bad.project/keys",
        f"/console/p/{PROJECT}/keys?state=destroyed",
        f"/console/p/{PROJECT}/keys?limit=abc",
        f"/console/p/{PROJECT}/keys?limit=99999999999999999999999",
        f"/console/p/{PROJECT}/keys?marker=-1",
        f"/console/p/{PROJECT}/keys?marker={'9' * 40}",
        f"/console/p/{PROJECT}/keys?q={'q' * 400}",
        f"/console/p/{PROJECT}/keys?q=%ff",
        f"/console/p/{PROJECT}/keys?q={quote('=')}",
        f"/console/p/{PROJECT}/keys/{key_id}/delete?x=%00",
        "/console/projects?open=../etc",
        f"/console/p/{PROJECT}/audit?operation=%ff",
        f"/console/p/{PROJECT}/audit?operation=encrypt",
        f"/console/p/{PROJECT}/audit?since=2026-13-45T99:99",
        f"/console/p/{PROJECT}/audit?since=yesterday&until={'9' * 100}",
        f"/console/p/{PROJECT}/audit?key={'k' * 400}",
        f"/console/p/{PROJECT}/audit?principal=%00&since=2026-01-01T00:00&until=2026-01-01T00:00",
        "/console/no-such-page",
        "/console/static/..%2f..%2fetc%2fpasswd",
    ]
    for path in paths:
        answer = admin_http.get(path)
        assert answer.status_code < 500, (path, answer.status_code)
        assert "Traceback" not in answer.text
        if answer.status_code >= 400:
            assert "default-src 'none'" in answer.headers["Content-Security-Policy"], path


def test_unknown_actions_and_methods(admin_http: ConsoleHttp, key_id: str) -> None:
    token = admin_http.csrf()
    assert admin_http.post(f"/console/p/{PROJECT}/keys/{key_id}/encrypt", data={"csrf": token}).status_code == 404
    assert admin_http.post(f"/console/p/{PROJECT}/keys/{key_id}/decrypt", data={"csrf": token}).status_code == 404
    assert admin_http.session.delete(f"{admin_http.endpoint}/console/p/{PROJECT}/keys", timeout=10).status_code < 500
    assert admin_http.session.put(f"{admin_http.endpoint}/console/sign-in", timeout=10).status_code < 500


def test_hostile_sign_ins(server: KMSServer) -> None:
    client = ConsoleHttp(server.endpoint)
    token = client.csrf("/console/sign-in")
    access_key, _ = credentials(server, "admin")
    for fields in (
        {"csrf": token},
        {"csrf": token, "access_key": "a" * 10_000, "secret_key": "s"},
        {"csrf": token, "access_key": access_key, "secret_key": "s" * 5000},
        {"csrf": token, "access_key": "\u00e9\x00", "secret_key": "\U0001f600"},
        {"csrf": "wrong", "access_key": access_key, "secret_key": "s"},
    ):
        answer = client.post("/console/sign-in", data=fields)
        assert 400 <= answer.status_code < 500, (fields.keys(), answer.status_code)
    assert post(client, "/console/sign-in", b"csrf=%ff&access_key=%ed%a0%80") == 400


def test_random_forms_never_give_a_5xx(admin_http: ConsoleHttp, server: KMSServer, key_id: str) -> None:
    """A seeded stream of random field names and values, percent-encoded bytes included, at every form."""
    generator = random.Random(17)
    alphabet = ["a", "7", "-", "=", "&", "%", "%00", "%ff", "%e2%80%ae", "+", "<", '"', "'", "%0a", "%20", ONLY_KEY]
    targets = [f"/console/p/{PROJECT}/keys/{key_id}/{action}" for action in ACTIONS if action != "disable"]
    targets += [f"/console/p/{PROJECT}/keys", "/console/sign-in", "/console/sign-out"]
    token = admin_http.csrf()
    names = ["csrf", "alias", "tag_key", "tag_value", "pending_days", "confirm", "rotation_interval", "description",
             "access_key", "secret_key"]  # fmt: skip
    for _ in range(300):
        fields = [f"{generator.choice(names)}={''.join(generator.choices(alphabet, k=generator.randint(0, 12)))}"
                  for _ in range(generator.randint(0, 6))]  # fmt: skip
        fields.append(f"csrf={token}")
        target = generator.choice(targets)
        status = post(admin_http, target, "&".join(fields).encode())
        assert status < 500, (target, fields, status)
        if target == "/console/sign-out" and status == 303:
            admin_http = ConsoleHttp.signed_in(server.endpoint, *credentials(server, "admin"))
            token = admin_http.csrf()
    assert "console page failed" not in server.log.read_text()


def test_markup_in_values_is_shown_as_text(admin_http: ConsoleHttp, server: KMSServer, key_id: str) -> None:
    hostile = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    answer = admin_http.post(f"/console/p/{PROJECT}/keys/{key_id}/description",
                             data={"csrf": admin_http.csrf(), "description": hostile})  # fmt: skip
    assert answer.status_code == 303
    page = admin_http.get(f"/console/p/{PROJECT}/keys/{key_id}").text
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    api(server, "update_description", key_id, "")


def test_a_key_cannot_be_created_under_a_cloud_kms_alias(admin_http: ConsoleHttp, server: KMSServer) -> None:
    keys_before = api(server, "list_keys").total
    data = {"csrf": admin_http.csrf(), "alias": "gcp/global/ring/key/1", "description": ""}
    answer = admin_http.post(f"/console/p/{PROJECT}/keys", data=data)
    assert 400 <= answer.status_code < 500 and "reserved for Cloud KMS" in answer.text, answer.status_code
    assert api(server, "list_keys").total == keys_before
