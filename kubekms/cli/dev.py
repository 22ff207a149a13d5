"""``kubekms dev``: developer tooling (control-plane binaries, later the whole stack)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from kubekms.devenv import binaries


@click.group()
def dev() -> None:
    """Developer tooling: build control-plane binaries, run the local stack."""


@dev.command("binaries")
@click.option("--force", is_flag=True, help="Rebuild even if the pinned binaries are cached.")
@click.option("--print-dir", is_flag=True, help="Only print where the binaries are (or would be).")
@click.option("--node", is_flag=True, help="Also build kubelet, kube-controller-manager, kube-scheduler and kubectl.")
@click.option("--with-helm", is_flag=True, help="Also build the pinned helm CLI.")
def binaries_command(force: bool, print_dir: bool, node: bool, with_helm: bool) -> None:
    """Build the pinned kube-apiserver, etcd and etcdctl from source via the Go module proxy (cached)."""
    flags = {"--force": force, "--print-dir": print_dir, "--node": node, "--with-helm": with_helm}
    sys.exit(binaries.main([flag for flag, given in flags.items() if given]))


@dev.command("image")
@click.option("--force", is_flag=True, help="Rebuild even if an image of the same inputs exists.")
def image_command(force: bool) -> None:
    """Build the kubekms container image with podman (base made here with mmdebstrap; cached by content)."""
    from kubekms.devenv import image

    sys.exit(image.main(force=force))


@dev.command("env")
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="The state directory of `kubekms dev up` (default: $XDG_STATE_HOME/kubekms/dev).",
)
def env_command(state_dir: Path | None) -> None:
    """Print the KUBEKMS_* exports that point the CLI at the running `kubekms dev up` (for eval)."""
    from kubekms.devenv import clientenv, stack

    directory = state_dir or stack.default_state_dir()
    try:
        click.echo(clientenv.read_client_env(directory), nl=False)
    except FileNotFoundError:
        raise click.ClickException(f"no stack in {directory}: start one with `kubekms dev up`") from None
    if not stack.stack_running(directory):  # the exports name the last run's port, which nothing serves now
        click.echo(f"warning: no `kubekms dev up` is running on {directory}: start it again first", err=True)


@dev.command("up")
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Where keys, etcd data and logs live between runs (default: $XDG_STATE_HOME/kubekms/dev).",
)
@click.option(
    "--check", is_flag=True, help="Run the scenario, print the evidence, stop; exit 0 when it holds, 1 otherwise."
)
@click.option(
    "--pods",
    is_flag=True,
    help="As a user deploys it, on a local node (root): the image, the static pod (plugin + server) "
    "beside kube-apiserver, `helm install` of the chart (operator, server).",
)
def up_command(state_dir: Path | None, check: bool, pods: bool) -> None:
    """Run the whole stack: kubekms server, etcd + kube-apiserver encrypting Secrets via the plugin, the operator."""
    if pods and os.geteuid() != 0:  # before anything starts: the node comes after the control plane
        click.echo(
            "error: --pods runs a real node (containerd, runc, network and cgroup setup) and needs root: "
            "run it as root (sudo), or leave out --pods for the same scenario as processes",
            err=True,
        )
        sys.exit(1)
    from kubekms.devenv import stack  # imports the kubernetes client: only when asked
    from kubekms.devenv.processes import StartError

    try:
        if pods:
            from kubekms.devenv import podstack

            sys.exit(podstack.run(state_dir or stack.default_state_dir().with_name("dev-pods"), check=check))
        sys.exit(stack.run(state_dir or stack.default_state_dir(), check=check))
    except (binaries.BuildError, stack.StateDirInUse, StartError, TimeoutError) as error:
        # what the user must act on (no Go, a busy state dir, a piece that did not start: its log's tail)
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
