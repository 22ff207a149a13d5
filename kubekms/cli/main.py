"""The ``kubekms`` command line: one group, each subcommand in its own module."""

from __future__ import annotations

import click

from kubekms import __version__
from kubekms.cli.dev import dev
from kubekms.cli.server import server


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kubekms")
def cli() -> None:
    """Declarative KMS keys for Kubernetes and KMS v2 encryption of etcd secrets."""


cli.add_command(dev)
cli.add_command(server)


def main() -> None:
    cli()
