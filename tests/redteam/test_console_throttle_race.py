"""Console sign-in throttle under a burst: 40 wrong secrets for one access key sent at once must not get more
secret checks than the limit (5 per access key in 5 minutes) — check-then-record was not atomic."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
import yaml

from kubekms.devenv.kmsserver import KMSServer, kms_server
from kubekms.server.console.database import SqliteConsoleDatabase
from kubekms.server.console.throttle import FAILURES_PER_ACCESS_KEY, FAILURES_PER_CLIENT, SignInThrottle

CSRF = re.compile(r'name="csrf" value="([^"]+)"')
BURST = 40


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    with kms_server(tmp_path_factory.mktemp("red-console")) as running:
        yield running


def _attempt(endpoint: str, access_key: str) -> int:
    with requests.Session() as session:
        form = session.get(f"{endpoint}/console/sign-in", timeout=30)
        token = CSRF.search(form.text)
        assert token, form.status_code
        form_fields = {"csrf": token.group(1), "access_key": access_key, "secret_key": "wrong"}
        answer = session.post(f"{endpoint}/console/sign-in", allow_redirects=False, timeout=30, data=form_fields)
        return answer.status_code


def test_a_burst_of_wrong_secrets_is_checked_at_most_the_limit(server: KMSServer, tmp_path: Path) -> None:
    access_key = yaml.safe_load(server.credentials_file("admin").read_text())["access_key"]
    with ThreadPoolExecutor(BURST) as pool:
        statuses = Counter(pool.map(lambda _: _attempt(server.endpoint, access_key), range(BURST)))
    assert set(statuses) <= {401, 429}, statuses
    assert statuses[401] <= FAILURES_PER_ACCESS_KEY, statuses


def test_successful_sign_ins_do_not_count_against_the_client() -> None:
    throttle = SignInThrottle(SqliteConsoleDatabase(None))
    for _ in range(FAILURES_PER_CLIENT + 5):
        assert throttle.attempt("10.0.0.1", "AK1") == 0
        throttle.succeeded("10.0.0.1", "AK1")
    assert throttle.retry_after("10.0.0.1", "AK2") == 0  # the successes left no failure of the client's
