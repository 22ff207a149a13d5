"""The console over plain HTTP (no browser): sign in, read a page's CSRF token, post forms as sent."""

from __future__ import annotations

import re

import requests

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class ConsoleHttp:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.session = requests.Session()

    def get(self, path: str, **kwargs: object) -> requests.Response:
        return self.session.get(self.endpoint + path, allow_redirects=False, timeout=10, **kwargs)

    def post(self, path: str, **kwargs: object) -> requests.Response:
        return self.session.post(self.endpoint + path, allow_redirects=False, timeout=10, **kwargs)

    def csrf(self, path: str = "/console/projects") -> str:
        page = self.get(path)
        match = CSRF.search(page.text)
        assert match, f"no CSRF token on {path} ({page.status_code})"
        return match.group(1)

    def sign_in(self, access_key: str, secret_key: str) -> requests.Response:
        token = self.csrf("/console/sign-in")
        return self.post("/console/sign-in", data={"csrf": token, "access_key": access_key, "secret_key": secret_key})

    @classmethod
    def signed_in(cls, endpoint: str, access_key: str, secret_key: str) -> ConsoleHttp:
        client = cls(endpoint)
        answer = client.sign_in(access_key, secret_key)
        assert answer.status_code == 303 and answer.headers["Location"] == "/console/", answer.text
        return client
