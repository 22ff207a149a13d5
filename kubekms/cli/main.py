"""The ``kubekms`` command line: one group, each subcommand in its own module."""

from __future__ import annotations

import click

from kubekms import __version__
from kubekms.cli.audit import audit
from kubekms.cli.datakey import datakey
from kubekms.cli.dev import dev
from kubekms.cli.envelope import decrypt, encrypt
from kubekms.cli.key import key
from kubekms.cli.operator import operator
from kubekms.cli.plugin import plugin
from kubekms.cli.quota import quota
from kubekms.cli.random import random_command
from kubekms.cli.server import server


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kubekms")
def cli() -> None:
    """Declarative KMS keys for Kubernetes and KMS v2 encryption of etcd secrets."""


cli.add_command(dev)
cli.add_command(server)
cli.add_command(key)
cli.add_command(datakey)
cli.add_command(random_command)
cli.add_command(quota)
cli.add_command(plugin)
cli.add_command(operator)
cli.add_command(audit)
cli.add_command(encrypt)
cli.add_command(decrypt)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
