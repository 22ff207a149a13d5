"""Fixtures for the plugin: a real kubekms server, a key, and real plugin processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kubekms.devenv.kmsserver import KMSServer, Principal, kms_server
from kubekms.devenv.plugin import PluginProcess, kubekms_backend_settings
from kubekms_plugin import BACKEND_ACTIONS

# The plugin's principal may use exactly these keys (least privilege; no wildcards on keys).
PLUGIN_KEYS = tuple(f"plugin/test-{index}" for index in range(40))
_aliases = iter(PLUGIN_KEYS)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KMSServer]:
    principals = [Principal(name="plugin", actions=BACKEND_ACTIONS, keys=PLUGIN_KEYS)]
    with kms_server(tmp_path_factory.mktemp("kms"), principals=principals) as running:
        yield running


@pytest.fixture
def key_alias(server: KMSServer) -> str:
    alias = next(_aliases)
    server.call("create_key", alias)
    return alias


@pytest.fixture
def make_plugin(server: KMSServer, tmp_path: Path) -> Iterator[Callable[..., PluginProcess]]:
    started: list[PluginProcess] = []

    def make(key: str, *, name: str = "plugin", start: bool = True, **settings: object) -> PluginProcess:
        config = {
            "backend": kubekms_backend_settings(server, "plugin"),
            "key": key,
            "poll_interval": "1s",
            **settings,
        }
        plugin = PluginProcess(tmp_path, config, name=name)
        started.append(plugin)
        if start:
            plugin.start()
        return plugin

    yield make
    for plugin in started:
        plugin.stop()
