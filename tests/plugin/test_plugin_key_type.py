"""The plugin works with symmetric keys only: pointed at an RSA key it says so, in Status and in its log."""

from __future__ import annotations

import urllib.request
from collections.abc import Callable

from plugin_support import stub
from prometheus_client.parser import text_string_to_metric_families

from kubekms.devenv.kmsserver import KMSServer
from kubekms.devenv.plugin import PluginProcess
from kubekms.devenv.processes import wait_for
from kubekms_plugin.v2 import api_pb2

RSA_ALIAS = "plugin/test-39"  # one of the aliases the plugin's principal may use; this module's server is its own


def test_a_plugin_pointed_at_an_rsa_key_refuses_it_by_name(
    server: KMSServer, make_plugin: Callable[..., PluginProcess]
) -> None:
    rsa_alias = RSA_ALIAS
    key = server.call("create_key", rsa_alias, key_spec="RSA_2048", key_usage="SIGN_VERIFY")
    plugin = make_plugin(rsa_alias, start=False)
    plugin.start(wait_healthy=False)
    expected = f"key {key.key_id} is RSA_2048 SIGN_VERIFY: the KMS v2 plugin uses AES_256 (symmetric) keys only"

    def answered() -> api_pb2.StatusResponse | None:
        answer: api_pb2.StatusResponse = stub(plugin).Status(api_pb2.StatusRequest(), timeout=5)
        return answer if expected in answer.healthz else None

    assert wait_for(answered, 15, "Status naming the key spec").healthz != "ok"
    assert not plugin.healthy()
    wait_for(lambda: describes(plugin) >= 3, 15, "three polls of the key")
    log = plugin.log.read_text()
    assert log.count(expected) == 1 and "Traceback" not in log  # one line, not one per poll


def describes(plugin: PluginProcess) -> float:
    with urllib.request.urlopen(f"{plugin.health_url}/metrics", timeout=5) as answer:
        families = text_string_to_metric_families(answer.read().decode())
    return sum(
        sample.value
        for family in families
        for sample in family.samples
        if sample.name == "kubekms_plugin_backend_calls_total" and sample.labels.get("operation") == "describe-key"
    )
