"""The AWS JSON 1.1 wire under the official AWS SDKs for Go v2, JavaScript v3 and Java v2 (not only boto3).

Each SDK runs a small program (tests/sdks/aws/<language>/) against a fresh server, through a TCP relay that
counts the connections the SDK opens and keeps the request heads it sends; the program prints one JSON line
per step and the tests below assert on them. The programs use each SDK as a user would: endpoint override,
static credentials from the server's credentials file, region eu-west-1, the SDK's default HTTP client,
retries and paginators.
"""

from __future__ import annotations

import base64
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from relay import Relay
from toolchains import go_binary, java_classpath, node_modules, run_json_lines

from kubekms.devenv.kmsserver import KMSServer

pytestmark = pytest.mark.sdks

PROGRAMS = Path(__file__).parent / "aws"
REGION = "eu-west-1"
# the same in each scenario (non-ASCII, characters JSON encoders escape differently, keys in any order)
INTEROP_CONTEXT = {"tenant": "ünïcødé ключ 😀", "b<&>": '"quoted" \\ slash', "zeta": "last", "alpha": "first"}
INTEROP_TEXT = "sealed by boto3 ✓"


@dataclass
class Run:
    language: str
    steps: dict[str, dict[str, Any]]
    relay: Relay
    server: KMSServer
    started: float


def _program(language: str) -> tuple[list[str], dict[str, str]]:
    """The command (and extra environment) of one language's scenario, built or fetched (cached) first."""
    if language == "go":
        return [str(go_binary(PROGRAMS / "go"))], {}
    if language == "node":
        modules = node_modules(PROGRAMS / "node")
        return [shutil.which("node") or "node", str(PROGRAMS / "node" / "main.mjs")], {"NODE_PATH": str(modules)}
    classpath = java_classpath(PROGRAMS / "java")
    java = shutil.which("java")
    if java is None:
        pytest.skip("`java` is not installed")
    return [java, "-cp", classpath, str(PROGRAMS / "java" / "Scenario.java")], {}


@pytest.fixture(scope="module", params=["go", "node", "java"])
def run(request: pytest.FixtureRequest, kms_server_factory: Any, sdk_env: Any) -> Iterator[Run]:
    language: str = request.param
    argv, extra = _program(language)
    server: KMSServer = kms_server_factory()
    relay = Relay(("127.0.0.1", server.port))
    relay.start()
    boto = server.aws_client(region=REGION)
    interop_key = boto.create_key()["KeyMetadata"]["KeyId"]
    sealed = boto.encrypt(KeyId=interop_key, Plaintext=INTEROP_TEXT.encode(), EncryptionContext=INTEROP_CONTEXT)
    env = {
        **sdk_env(server, region=REGION),
        "KMS_ENDPOINT": relay.endpoint,
        "KMS_INTEROP_KEY": interop_key,
        "KMS_INTEROP_CIPHERTEXT": base64.b64encode(sealed["CiphertextBlob"]).decode(),
        **extra,
    }
    started = time.time()
    try:
        lines = run_json_lines(argv, env, timeout=300)
        yield Run(language, {line["step"]: line for line in lines}, relay, server, started)
    finally:
        relay.close()


def test_keys_are_created_and_described(run: Run) -> None:
    steps = run.steps
    symmetric = steps["create_symmetric"]
    key_id = symmetric["key_id"]
    assert symmetric["arn"] == f"arn:aws:kms:{REGION}:default:key/{key_id}"
    assert (symmetric["key_state"], symmetric["key_spec"], symmetric["enabled"]) == (
        "Enabled",
        "SYMMETRIC_DEFAULT",
        True,
    )
    # CreationDate is epoch seconds with a fraction on the wire; every SDK reads it as its time type
    assert run.started - 5 < symmetric["creation_date"] < time.time() + 5
    assert steps["describe"] == {
        "step": "describe",
        "key_id": key_id,
        "key_state": "Enabled",
        "origin": "AWS_KMS",
        "key_manager": "CUSTOMER",
        "description": {"go": "go sdk", "node": "js sdk", "java": "java sdk"}[run.language],
        "creation_date": symmetric["creation_date"],
        "encryption_algorithms": ["SYMMETRIC_DEFAULT"],
        "account": "default",
    }
    assert steps["create_hmac"]["key_spec"] == "HMAC_256"
    assert steps["create_hmac"]["mac_algorithms"] == ["HMAC_SHA_256"]
    assert steps["create_ecc"]["key_spec"] == "ECC_NIST_P256"
    assert steps["create_ecc"]["signing_algorithms"] == ["ECDSA_SHA_256"]


def test_the_sdk_paginator_walks_list_keys_one_key_a_page(run: Run) -> None:
    listing = run.steps["list_keys"]
    made = {run.steps[step]["key_id"] for step in ("create_symmetric", "create_hmac", "create_ecc")}
    # the three, the ReEncrypt target and the interop key boto3 made
    assert len(listing["key_ids"]) == len(set(listing["key_ids"])) == 5
    assert made <= set(listing["key_ids"])
    assert listing["pages"] == 5


def test_every_sdk_paginator_walks_one_item_a_page(run: Run) -> None:
    if run.language != "go":
        pytest.skip("walked with the Go SDK's paginators only")
    walked = {name: tuple(counts) for name, counts in run.steps["paging"].items() if name != "step"}
    assert walked == {  # (pages, items, items of one unpaged call)
        "ListAliases": (3, 3, 3),
        "ListGrants": (3, 3, 3),
        "ListRetirableGrants": (3, 3, 3),
        "ListKeyPolicies": (1, 1, 1),
        "ListKeyRotations": (3, 3, 3),
        "ListResourceTags": (3, 3, 3),
    }


def test_aliases_and_tags(run: Run) -> None:
    aliases = run.steps["aliases"]
    assert aliases["names"] == [aliases["alias"]]
    assert run.steps["tags"]["tags"] == {"team": "sdk", "env": "test"}
    # the SDK's calls really reached the keystore: boto3 sees the same
    boto = run.server.aws_client(region=REGION)
    key_id = run.steps["create_symmetric"]["key_id"]
    assert boto.describe_key(KeyId=aliases["alias"])["KeyMetadata"]["KeyId"] == key_id


def test_data_keys_encrypt_decrypt_and_reencrypt(run: Run) -> None:
    steps = run.steps
    arn = steps["create_symmetric"]["arn"]
    assert steps["data_keys"] == {
        "step": "data_keys",
        "plaintext_len": 32,
        "round_trip": True,
        "key_id": arn,
        "without_plaintext_len": 24,
    }
    sealed = steps["encrypt_decrypt"]
    assert (sealed["round_trip"], sealed["key_id"], sealed["algorithm"]) == (True, arn, "SYMMETRIC_DEFAULT")
    wrong_context = sealed["wrong_context"]
    assert wrong_context["typed"] is True
    assert _code(run, wrong_context) == "InvalidCiphertextException"
    assert wrong_context["status"] == 400
    reencrypted = steps["reencrypt"]
    assert reencrypted["source_key_id"] == arn
    assert reencrypted["key_id"].startswith(f"arn:aws:kms:{REGION}:default:key/")
    assert reencrypted["key_id"] != arn
    assert reencrypted["round_trip"] is True
    assert steps["random"]["len"] == 32


def test_an_encryption_context_binds_the_same_across_sdks(run: Run) -> None:
    """boto3 seals, the SDK opens and seals again, boto3 opens: the context is bound as the same canonical bytes
    whatever each SDK's JSON encoder does with non-ASCII, escapes and key order."""
    interop = run.steps["interop"]
    assert interop["plaintext"] == INTEROP_TEXT
    boto = run.server.aws_client(region=REGION)
    opened = boto.decrypt(CiphertextBlob=base64.b64decode(interop["ciphertext"]), EncryptionContext=INTEROP_CONTEXT)
    assert opened["Plaintext"].decode() == INTEROP_TEXT
    other = {**INTEROP_CONTEXT, "tenant": "ünïcødé ключ 😁"}
    with pytest.raises(boto.exceptions.InvalidCiphertextException):
        boto.decrypt(CiphertextBlob=base64.b64decode(interop["ciphertext"]), EncryptionContext=other)


def test_sign_verify_and_mac(run: Run) -> None:
    signed = run.steps["sign_verify"]
    assert (signed["valid"], signed["algorithm"]) == (True, "ECDSA_SHA_256")
    assert signed["tampered"]["typed"] is True
    assert _code(run, signed["tampered"]) == "KMSInvalidSignatureException"
    assert run.steps["mac"] == {"step": "mac", "len": 32, "valid": True}


def test_public_keys_and_signatures_work_with_the_languages_own_crypto(run: Run) -> None:
    public_keys = run.steps["public_keys"]
    assert public_keys["ecdsa_local_verify"] is True  # KMS's ECDSA signature is DER: crypto/ecdsa, node, JCA verify it
    assert public_keys["rsa_oaep_round_trip"] is True  # the language's own OAEP SHA-256 (MGF1 SHA-256) opens in KMS
    assert public_keys["rsa_encryption_algorithms"] == ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]


def test_key_material_import_with_a_valid_to_timestamp(run: Run) -> None:
    if run.language != "go":
        pytest.skip("imported with Go's crypto only")
    imported = run.steps["import"]
    assert (imported["key_state"], imported["origin"], imported["round_trip"]) == ("Enabled", "EXTERNAL", True)
    assert imported["expiration_model"] == "KEY_MATERIAL_EXPIRES"
    assert imported["valid_to"] == pytest.approx(imported["sent_valid_to"], abs=0.001)
    assert imported["parameters_valid_to"] == pytest.approx(run.started + 86400, abs=120)


def test_rotation(run: Run) -> None:
    rotation = run.steps["rotation"]
    assert rotation["enabled"] is True
    assert rotation["period"] == 90
    assert rotation["next_rotation_date"] == pytest.approx(run.steps["create_symmetric"]["creation_date"] + 90 * 86400)
    assert rotation["rotation_types"] == ["ON_DEMAND"]
    assert rotation["truncated"] is False
    assert rotation["old_ciphertext_opens"] is True


@pytest.mark.parametrize(
    ("step", "error_type"), [("disabled", "DisabledException"), ("not_found", "NotFoundException")]
)
def test_errors_surface_as_the_sdks_typed_exceptions(run: Run, step: str, error_type: str) -> None:
    error = run.steps[step]
    assert error["error"] is True
    assert error["typed"] is True, error  # Go errors.As, JS instanceof, Java catch by class
    assert _code(run, error) == error_type
    assert error["status"] == 400
    if run.language == "java":
        assert error["class"] == error_type
        assert error["retryable"] is False


def test_a_dry_run_is_the_sdks_typed_dry_run_exception_and_makes_no_grant(run: Run) -> None:
    dry_run = run.steps["dry_run"]
    assert dry_run["typed"] is True, dry_run
    assert _code(run, dry_run) == "DryRunOperationException"
    assert dry_run["status"] == 412
    assert dry_run["grants"] == 0


@pytest.mark.parametrize(
    ("step", "error_type"),
    [("wrong_secret", "InvalidSignatureException"), ("unknown_access_key", "UnrecognizedClientException")],
)
def test_signature_errors_carry_aws_codes(run: Run, step: str, error_type: str) -> None:
    error = run.steps[step]
    assert error["typed"] is True  # KMS's model has no type for these: the SDK's generic service error
    assert _code(run, error) == error_type
    assert error["status"] == 400


def test_a_skewed_client_clock_is_corrected_from_the_date_header(run: Run) -> None:
    if run.language == "go":
        pytest.skip("the Go SDK's signing clock cannot be set from outside the SDK")
    skew = run.steps["clock_skew"]
    assert _code(run, skew["refused"]) == "InvalidSignatureException"
    assert skew["refused"]["message"].startswith("Signature expired")
    assert skew["attempts"] == 2  # refused once, then accepted after the SDK's correction


def test_parallel_calls_on_one_client_all_succeed_on_kept_connections(run: Run) -> None:
    if run.language == "java":
        pytest.skip("the Java scenario is sequential")
    concurrent = run.steps["concurrent"]
    assert concurrent["failures"] == 0
    assert concurrent["round_trips"] >= 64
    # parallel connections, reused: a server closing them would show one per call (2 calls a round trip); Go's
    # transport may dial a few more than its workers (a dial raced by a connection coming back to its pool)
    assert 1 < concurrent["dials"] <= 2 * concurrent["workers"]


def test_schedule_and_cancel_key_deletion(run: Run) -> None:
    deletion = run.steps["deletion"]
    assert deletion["key_state"] == "PendingDeletion"
    assert deletion["pending_days"] == 7
    assert run.started + 7 * 86400 - 5 < deletion["deletion_date"] < time.time() + 7 * 86400 + 5
    assert deletion["cancelled_key_id"] == run.steps["reencrypt"]["key_id"]
    assert deletion["state_after_cancel"] == "Disabled"


def test_the_sdks_connection_pool_keeps_its_connection(run: Run) -> None:
    """HTTP/1.1 keep-alive: every client of the program opens one connection, refusals included (a 400 must not
    close it), and every request carries its body by Content-Length."""
    clients = {"go": 3, "node": 5, "java": 5}[run.language]  # the main client and one per error/clock client
    pooled = run.steps["concurrent"]["dials"] if "concurrent" in run.steps else 0
    assert run.relay.connections == clients + pooled
    heads = run.relay.request_heads()
    assert len(heads) >= 30
    assert all(head[""] == "POST / HTTP/1.1" for head in heads)
    assert all("content-length" in head and "transfer-encoding" not in head for head in heads)


def _code(run: Run, error: dict[str, Any]) -> str:
    return str(error["name"] if run.language == "node" else error["code"])
