"""``kubekms dev``: developer tooling (control-plane binaries, later the whole stack)."""

from __future__ import annotations

import sys

import click

from kubekms.devenv import binaries


@click.group()
def dev() -> None:
    """Developer tooling: build control-plane binaries, run the local stack."""


@dev.command("binaries")
@click.option("--force", is_flag=True, help="Rebuild even if the pinned binaries are cached.")
@click.option("--print-dir", is_flag=True, help="Only print where the binaries are (or would be).")
def binaries_command(force: bool, print_dir: bool) -> None:
    """Build the pinned kube-apiserver, etcd and etcdctl from source via the Go module proxy (cached)."""
    args = (["--force"] if force else []) + (["--print-dir"] if print_dir else [])
    sys.exit(binaries.main(args))
