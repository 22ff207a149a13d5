"""The control-plane builder: staging-module discovery, caching, clear failures."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kubekms.devenv import binaries

KUBERNETES_GOMOD_EXCERPT = """
module k8s.io/kubernetes

require (
\tk8s.io/api v0.0.0
\tk8s.io/kms v0.0.0
\tk8s.io/utils v0.0.0-20260210185600-b8788abfbbc2
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/kms => ./staging/src/k8s.io/kms
\tk8s.io/sample-cli-plugin => ./staging/src/k8s.io/sample-cli-plugin
)
"""


def test_staging_modules_are_the_local_replaces() -> None:
    assert binaries.staging_modules(KUBERNETES_GOMOD_EXCERPT) == [
        "k8s.io/api",
        "k8s.io/kms",
        "k8s.io/sample-cli-plugin",
    ]


def _fake_binaries(directory: Path, names: tuple[str, ...]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        path = directory / name
        path.write_text("#!/bin/sh\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_cached_binaries_are_not_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fake_binaries(tmp_path, binaries.BINARIES)
    monkeypatch.setenv(binaries.ASSETS_ENV, str(tmp_path))
    monkeypatch.setenv("PATH", "")  # a rebuild would need go and fail: proves nothing is built

    assert binaries.ensure_binaries() == tmp_path
    assert "nothing to do" in capsys.readouterr().err


def test_node_binaries_have_their_own_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(binaries.ASSETS_ENV, raising=False)
    monkeypatch.delenv(binaries.NODE_ASSETS_ENV, raising=False)
    monkeypatch.setenv("PATH", "")  # any build would need go and fail
    _fake_binaries(binaries.assets_dir(), binaries.BINARIES)
    _fake_binaries(binaries.node_assets_dir(), binaries.NODE_BINARIES)

    assert binaries.node_assets_dir() != binaries.assets_dir()
    assert binaries.ensure_binaries() == binaries.assets_dir()
    assert binaries.ensure_node_binaries() == binaries.node_assets_dir()
    err = capsys.readouterr().err
    assert "already built, nothing to do" in err
    assert "node binaries already built, nothing to do" in err

    (binaries.node_assets_dir() / "kubelet").unlink()
    with pytest.raises(binaries.BuildError, match="Go is not on PATH"):
        binaries.ensure_node_binaries()
    assert binaries.ensure_binaries() == binaries.assets_dir()  # the control plane's set is untouched


def test_missing_go_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(binaries.ASSETS_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(binaries.BuildError, match="Go is not on PATH"):
        binaries.ensure_binaries()


def test_unreachable_proxy_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOPROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("GOMODCACHE", str(tmp_path / "mod"))
    monkeypatch.setenv("GOFLAGS", "")
    monkeypatch.setenv("GONOSUMDB", "*")
    monkeypatch.setenv("GOSUMDB", "off")

    with pytest.raises(binaries.BuildError) as failure:
        binaries.build_kube_apiserver("v1.36.3", tmp_path / "out", tmp_path / "work")

    message = str(failure.value)
    assert "fetch k8s.io/kubernetes v1.36.3 metadata failed" in message
    assert "proxy looks unreachable (GOPROXY=http://127.0.0.1:9)" in message
    assert not os.path.exists(tmp_path / "out" / "kube-apiserver")
