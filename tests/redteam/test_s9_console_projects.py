"""A console visitor limited to one project must not make the server open (create) other projects' keystores.

The console's gate opened the project's backend before it asked whether the visitor may use that project: every
page or form under ``/console/p/<any id>/`` from a principal limited to ``proj-s9p`` created a keystore for
``<any id>`` (a directory, a root key, a database) and then answered 403 — a signed-in user with the least grant
filled the state directory with projects, which the console then listed. The wires check the project first (the
pipeline opens no keystore for a refused call). Real server, plain HTTP."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "console"))
from console_harness import ConsoleHttp

from kubekms.devenv.kmsserver import KMSServer, Principal

PROJECT = "proj-s9p"
LIMITED = Principal("limited", projects=(PROJECT,))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    running = KMSServer(tmp_path_factory.mktemp("s9p") / "state", principals=(LIMITED,), project_id=PROJECT)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def visitor(server: KMSServer) -> ConsoleHttp:
    credentials = yaml.safe_load(server.credentials_file(LIMITED.name).read_text())
    client = ConsoleHttp.signed_in(server.endpoint, credentials["access_key"], credentials["secret_key"])
    assert client.get(f"/console/p/{PROJECT}/keys").status_code == 200  # its own project works
    return client


def _projects(server: KMSServer) -> set[str]:
    return {path.name for path in (server.state_dir / "keystore").iterdir()}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/console/p/{project}/keys"),
        ("GET", "/console/p/{project}/keys?q=some-key"),
        ("GET", "/console/p/{project}/keys?q=owner=team-a"),
        ("GET", "/console/p/{project}/keys/some-key"),
        ("GET", "/console/p/{project}/account"),
        ("POST", "/console/p/{project}/keys/some-key/disable"),
        ("GET", "/console/p/{project}/keys/some-key/delete"),
        ("POST", "/console/p/{project}/keys"),  # create a key
    ],
)
def test_another_project_is_refused_without_a_keystore_made(
    server: KMSServer, visitor: ConsoleHttp, method: str, path: str
) -> None:
    before = _projects(server)
    project = f"s9p-other-{len(before)}"
    target = path.format(project=project)
    if method == "GET":
        answer = visitor.get(target)
    else:
        answer = visitor.post(target, data={"csrf": visitor.csrf(f"/console/p/{PROJECT}/keys"), "alias": "x"})
    assert answer.status_code == 403, (answer.status_code, target)  # the key list and its search too
    assert _projects(server) == before, f"{method} {target} made a keystore for {project}"
