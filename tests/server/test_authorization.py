"""Authorization matrices: each principal x each operation -> allowed, or exactly the configured KMS.03xx (v1.0
wire); each principal x key policy x grant -> allowed or AccessDeniedException (AWS wire, boto3)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

import aiohttp
import botocore.exceptions
import pytest
from aws_policy_support import account_root, boto_kms, policy, user

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server
from kubekms.providers import Credentials
from kubekms.wire.signing import sign_headers

APP = "app-key"
OTHER = "other-key"
OK = "OK"

PRINCIPALS = (
    Principal("plugin", actions=("create-datakey", "decrypt-datakey"), keys=(APP,)),
    Principal("reader", actions=("describe-key", "list-keys")),
    Principal("key-admin", keys=(APP,)),  # every operation, but only on the app key
    Principal("tenant2", projects=("proj2",)),
    Principal("allowed"),  # every operation on every key
    Principal("limited", keys=("none",)),  # every operation, on no key of its own: only a policy or grant helps
    Principal("denied", actions=("describe-key",)),  # Encrypt is beyond its operations, a ceiling nothing lifts
)

# operation -> (HTTP method, path after /kms/, body); "{app}" and "{cipher}" are filled in per run
OPERATIONS = {
    "describe-key(app)": ("POST", "describe-key", {"key_id": APP}),
    "describe-key(app by id)": ("POST", "describe-key", {"key_id": "{app}"}),
    "describe-key(other)": ("POST", "describe-key", {"key_id": OTHER}),
    "create-datakey(app)": ("POST", "create-datakey", {"key_id": APP}),
    "create-datakey(app by id)": ("POST", "create-datakey", {"key_id": "{app}"}),
    "create-datakey(other)": ("POST", "create-datakey", {"key_id": OTHER}),
    "create-datakey(missing key)": ("POST", "create-datakey", {"key_id": "no-such-key"}),
    "decrypt-datakey(app)": ("POST", "decrypt-datakey", {"key_id": APP, "cipher_text": "{cipher}"}),
    "get-key-rotation-status(app)": ("POST", "get-key-rotation-status", {"key_id": APP}),
    "list-keys": ("POST", "list-keys", {}),
    "create-key": ("POST", "create-key", {"key_alias": "{unique}"}),
    "gen-random": ("POST", "gen-random", {"random_data_length": "64"}),
    "user-quotas": ("GET", "user-quotas", None),
}

DENY_OPERATION, DENY_KEY, DENY_PROJECT = "KMS.0307", "KMS.0306", "KMS.0305"
EXPECTED = {
    "admin": dict.fromkeys(OPERATIONS, OK) | {"create-datakey(missing key)": "KMS.0207"},
    "plugin": dict.fromkeys(OPERATIONS, DENY_OPERATION)
    | {
        "create-datakey(app)": OK,
        "create-datakey(app by id)": OK,
        "decrypt-datakey(app)": OK,
        "create-datakey(other)": DENY_KEY,
        "create-datakey(missing key)": DENY_KEY,  # a restricted principal does not learn which keys exist
    },
    "reader": dict.fromkeys(OPERATIONS, DENY_OPERATION)
    | {"describe-key(app)": OK, "describe-key(app by id)": OK, "describe-key(other)": OK, "list-keys": OK},
    "key-admin": dict.fromkeys(OPERATIONS, OK)
    | {
        "describe-key(other)": DENY_KEY,
        "create-datakey(other)": DENY_KEY,
        "create-datakey(missing key)": DENY_KEY,
        "list-keys": DENY_KEY,  # account-wide operations need every key
        "create-key": DENY_KEY,
        "user-quotas": DENY_KEY,
    },
    "tenant2": dict.fromkeys(OPERATIONS, DENY_PROJECT),
}


@pytest.fixture(scope="module")
def authz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("authz"), principals=PRINCIPALS, project_id="proj1") as running:
        yield running


async def call(server: KMSServer, principal: str, method: str, operation: str, body: dict | None) -> tuple[int, dict]:
    url = f"{server.endpoint}/v1.0/{server.project_id}/kms/{operation}"
    raw = b"" if body is None else json.dumps(body).encode()
    credentials = Credentials.from_file(server.credentials_file(principal))
    headers = sign_headers(method, url, {"Content-Type": "application/json"}, raw, credentials)
    async with aiohttp.ClientSession() as session, session.request(method, url, data=raw, headers=headers) as answer:
        return answer.status, await answer.json(content_type=None)


async def test_authorization_matrix(authz_server: KMSServer) -> None:
    _, app = await call(authz_server, "admin", "POST", "create-key", {"key_alias": APP})
    await call(authz_server, "admin", "POST", "create-key", {"key_alias": OTHER})
    _, data_key = await call(authz_server, "admin", "POST", "create-datakey", {"key_id": APP})
    fill = {"{app}": app["key_info"]["key_id"], "{cipher}": data_key["cipher_text"]}
    unique = itertools.count()

    mismatches = []
    for principal, expectations in EXPECTED.items():
        for operation, expected in expectations.items():
            method, path, template = OPERATIONS[operation]
            body = None
            if template is not None:
                body = {k: fill.get(v, v) for k, v in template.items()}
                if body.get("key_alias") == "{unique}":
                    body["key_alias"] = f"made-by-{principal}-{next(unique)}"
            status, payload = await call(authz_server, principal, method, path, body)
            got = OK if status == 200 else payload["error"]["error_code"]
            if got != expected:
                mismatches.append(f"{principal} x {operation}: expected {expected}, got {got} ({payload})")
            if expected.startswith("KMS.03"):
                assert status == 403
    assert not mismatches, "\n".join(mismatches)


async def test_denials_are_audited_with_the_principal_and_code(authz_server: KMSServer) -> None:
    await call(authz_server, "plugin", "POST", "describe-key", {"key_id": APP})
    authz_server.stop()  # SIGTERM flushes the audit buffer
    authz_server.start()
    lines = [json.loads(line) for line in authz_server.audit_log.read_text().splitlines()]
    denied = [e for e in lines if e["principal"] == "plugin" and e["operation"] == "describe-key"]
    assert denied and denied[-1]["result"] == DENY_OPERATION and denied[-1]["status"] == 403
    assert denied[-1]["project"] == "proj1" and denied[-1]["key_id"] == APP and len(denied[-1]["request_id"]) == 32


# --------------------------------------------------------------------- principals x key policies x grants (AWS wire)

ACCOUNT = "default"  # the AWS account of principals of every project (the server's default_project)
CALLERS = ("allowed", "limited", "denied")
BLUE = {"tenant": "blue"}  # the encryption context of every Encrypt below
CALLER_ARNS = {"AWS": [user(name, ACCOUNT)["AWS"] for name in CALLERS]}


def _statement(effect: str) -> dict[str, object]:
    return {"Effect": effect, "Principal": CALLER_ARNS, "Action": "kms:Encrypt", "Resource": "*"}


KEY_POLICIES = {
    "default": None,
    "deny": policy(account_root(ACCOUNT), _statement("Deny")),
    "allow-principal": policy(account_root(ACCOUNT), _statement("Allow")),
}
GRANTS = {"none": None, "matching": {"tenant": "blue"}, "constraint-mismatch": {"tenant": "red"}}
ALLOWED, DENIED = "allow", "deny"


def expected_decision(caller: str, key_policy: str, grant: str) -> str:
    """AWS's evaluation: the principals file's operations are a ceiling; a key policy Deny wins; an Allow naming the
    caller allows alone; the default policy delegates to the caller's key list; else only a grant whose constraint
    holds allows."""
    if caller == "denied" or key_policy == "deny":
        return DENIED
    if key_policy == "allow-principal" or caller == "allowed":
        return ALLOWED
    return ALLOWED if grant == "matching" else DENIED


def test_principals_by_key_policies_by_grants(authz_server: KMSServer) -> None:
    admin = boto_kms(authz_server)
    clients = {name: boto_kms(authz_server, name) for name in CALLERS}
    keys: dict[tuple[str, str], str] = {}
    for key_policy, grant in itertools.product(KEY_POLICIES, GRANTS):
        document = KEY_POLICIES[key_policy]
        key_id = admin.create_key(**({"Policy": document} if document else {}))["KeyMetadata"]["KeyId"]
        constraint = GRANTS[grant]
        for caller in CALLERS if constraint is not None else ():
            admin.create_grant(KeyId=key_id, GranteePrincipal=user(caller, ACCOUNT)["AWS"], Operations=["Encrypt"],
                               Constraints={"EncryptionContextSubset": constraint})  # fmt: skip
        keys[key_policy, grant] = key_id

    mismatches = []
    for caller, key_policy, grant in itertools.product(CALLERS, KEY_POLICIES, GRANTS):
        try:
            clients[caller].encrypt(KeyId=keys[key_policy, grant], Plaintext=b"x", EncryptionContext=BLUE)
            got = ALLOWED
        except botocore.exceptions.ClientError as error:
            code = error.response["Error"]["Code"]
            got = DENIED if code == "AccessDeniedException" else code
        if got != expected_decision(caller, key_policy, grant):
            mismatches.append(f"{caller} x policy {key_policy} x grant {grant}: got {got}")
    assert not mismatches, "\n".join(mismatches)
