"""The operator's re-encryption calls, made for real with a token of the chart's ServiceAccount.

With `operator.reencryption.enabled=true` the chart's rules must carry a whole pass (probe
Secret, apiserver /metrics, every Secret listed in pages and rewritten); with the default
values the same calls must be refused. The calls are the operator's own (kubekms_operator's
Rewriter and run_pass), so a new call the chart does not grant fails here.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from chart_support import FULL_VALUES, ApiServer, by_kind, render, service_account_kubeconfig
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from kubekms.devenv.controlplane import ControlPlane
from kubekms.devenv.processes import wait_for
from kubekms_operator.reencryption import PROBE_SECRET, Progress, Rewriter, run_pass

pytestmark = pytest.mark.e2e

RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}
SECRETS = 30


def rewriter_with_chart_rbac(tmp_path: Path, plane: ControlPlane, values: dict[str, Any]) -> tuple[Rewriter, str]:
    """Install the chart's RBAC for a new release; a Rewriter whose only identity is its ServiceAccount."""
    admin = config.new_client_from_config(config_file=str(plane.kubeconfig))
    cluster, core = ApiServer(admin), client.CoreV1Api(admin)
    suffix = uuid.uuid4().hex[:6]
    release, namespace, apps = f"re{suffix}", f"kms-{suffix}", f"apps-{suffix}"
    for name in (namespace, apps):
        core.create_namespace({"metadata": {"name": name}})
    rendered = render(tmp_path, values, release=release, namespace=namespace, include_crds=True)
    cluster.install_crds(by_kind(rendered, "CustomResourceDefinition"))
    for body in rendered:
        if body["kind"] in RBAC_KINDS:
            cluster.create(body)
    account = f"{release}-kubekms-operator"
    # The RBAC authorizer serves new bindings from its informers: poll until it answers with them.
    wait_for(lambda: cluster.can(account, namespace, "list", resource="namespaces"), 30, "the chart's RBAC in force")
    for index in range(SECRETS):
        core.create_namespaced_secret(apps, {"metadata": {"name": f"s-{index:03d}"}, "stringData": {"v": str(index)}})
    kubeconfig = service_account_kubeconfig(plane, namespace, account, tmp_path / f"{release}.kubeconfig")
    operator_api = config.new_client_from_config(config_file=str(kubeconfig))
    return Rewriter(operator_api, provider_name="kubekms", probe_namespace=apps), apps


def test_reencryption_pass_runs_with_the_charts_rbac(tmp_path: Path, control_plane: ControlPlane) -> None:
    rewriter, apps = rewriter_with_chart_rbac(tmp_path, control_plane, FULL_VALUES)
    rewriter.touch_probe()  # created
    rewriter.touch_probe()  # patched
    admin = client.CoreV1Api(config.new_client_from_config(config_file=str(control_plane.kubeconfig)))
    probe = admin.read_namespaced_secret(PROBE_SECRET, apps)
    assert "kubekms.io/probe" in probe.metadata.annotations
    # This control plane encrypts nothing: the metric exists for no key, but reading /metrics is allowed.
    assert rewriter.writes_with("no-such-key") is False

    saved: list[Progress] = []
    final = run_pass(rewriter, Progress(keyVersion=2), save=saved.append, should_stop=lambda: False)
    assert final.finished and saved
    every_secret = admin.list_secret_for_all_namespaces().items
    assert final.done == len(every_secret) >= SECRETS + 1  # every namespace, the probe included


def test_reencryption_calls_are_refused_without_it(tmp_path: Path, control_plane: ControlPlane) -> None:
    rewriter, apps = rewriter_with_chart_rbac(tmp_path, control_plane, {})
    for call in (
        rewriter.touch_probe,
        lambda: rewriter.writes_with("no-such-key"),
        lambda: next(rewriter.pages("")),
        lambda: rewriter.rewrite({"metadata": {"name": "s-000", "namespace": apps}, "stringData": {"v": "x"}}),
    ):
        with pytest.raises(ApiException) as refused:
            call()
        assert refused.value.status == 403
