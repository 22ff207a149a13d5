"""The ``kubekms`` command line: one group, each subcommand in its own module.

Subcommands are imported when they run (or when help lists them), not at start: the operator
and the plugin are long-running processes that should not carry the server's, the console's and
every cloud SDK's modules in memory (importing them all costs ~80 MB).
"""

from __future__ import annotations

import importlib

import click

from kubekms import __version__

# command name -> "module:attribute" of its click command
SUBCOMMANDS = {
    "dev": "kubekms.cli.dev:dev",
    "server": "kubekms.cli.server:server",
    "key": "kubekms.cli.key:key",
    "datakey": "kubekms.cli.datakey:datakey",
    "random": "kubekms.cli.random:random_command",
    "quota": "kubekms.cli.quota:quota",
    "plugin": "kubekms.cli.plugin:plugin",
    "operator": "kubekms.cli.operator:operator",
    "audit": "kubekms.cli.audit:audit",
    "encrypt": "kubekms.cli.envelope:encrypt",
    "decrypt": "kubekms.cli.envelope:decrypt",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use (click's documented lazy-loading pattern)."""

    def __init__(self, *args: object, lazy: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *self._lazy]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self._lazy:
            return super().get_command(ctx, cmd_name)
        module_name, attribute = self._lazy[cmd_name].split(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{self._lazy[cmd_name]} is not a click command")
        return command


@click.group(cls=LazyGroup, lazy=SUBCOMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kubekms")
def cli() -> None:
    """Declarative KMS keys for Kubernetes and KMS v2 encryption of etcd secrets."""


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
