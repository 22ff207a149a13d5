"""How the client subcommands (key, datakey, random, quota) find the backend and report outcomes.

The backend comes from ``--backend-config FILE`` (YAML with the fields of
:class:`~kubekms.providers.BackendConfig`) or from the environment: ``KUBEKMS_PROVIDER``
(default ``kubekms``), ``KUBEKMS_ENDPOINT``, ``KUBEKMS_PROJECT_ID``, ``KUBEKMS_REGION``,
``KUBEKMS_CREDENTIALS_FILE``, ``KUBEKMS_CA_FILE``, ``KUBEKMS_STATE_DIR`` (provider ``local``),
``KUBEKMS_LOCATION`` and ``KUBEKMS_KEY_RING`` (provider ``gcp``, whose location the config's
``location`` names as the plugin config and the KMSBackend do; ``region`` is accepted for it too).
Secrets never come from flags: credentials are a file (for ``gcp`` a service-account key JSON;
without one, Application Default Credentials). Every KMSError becomes one line on
stderr and exit status 1.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from kubekms.backend import Backend
from kubekms.cli.output import printable
from kubekms.errors import InvalidArgument, KMSError
from kubekms.providers import BackendConfig, open_backend
from kubekms.wire import inputs
from kubekms.yamlfile import read_yaml_mapping

P = ParamSpec("P")
T = TypeVar("T")

ENVIRONMENT = {
    "provider": "KUBEKMS_PROVIDER",
    "endpoint": "KUBEKMS_ENDPOINT",
    "project_id": "KUBEKMS_PROJECT_ID",
    "region": "KUBEKMS_REGION",
    "credentials_file": "KUBEKMS_CREDENTIALS_FILE",
    "ca_file": "KUBEKMS_CA_FILE",
    "state_dir": "KUBEKMS_STATE_DIR",
    "location": "KUBEKMS_LOCATION",
    "key_ring": "KUBEKMS_KEY_RING",
}
_PATH_FIELDS = {"credentials_file", "ca_file", "state_dir"}
_FIELDS = {f.name for f in dataclasses.fields(BackendConfig)} - {"credentials"} | {"location"}


def _config_from_mapping(values: Mapping[str, Any], source: str) -> BackendConfig:
    unknown = sorted(set(values) - _FIELDS)
    if unknown:
        raise InvalidArgument(f"{source}: unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(_FIELDS))}")
    fields: dict[str, Any] = {}
    for name, value in values.items():
        if value is None or value == "":
            continue
        fields[name] = Path(str(value)).expanduser() if name in _PATH_FIELDS else value
    fields.setdefault("provider", "kubekms")
    if "location" in fields:  # BackendConfig.region is gcp's location
        if fields["provider"] != "gcp" or "region" in fields:
            raise InvalidArgument(f"{source}: location is for provider gcp (instead of region); others take region")
        fields["region"] = fields.pop("location")
    try:
        return BackendConfig(**fields)
    except TypeError as error:
        raise InvalidArgument(f"{source}: {error}") from None


def load_backend_config(path: Path | None, environ: Mapping[str, str] | None = None) -> BackendConfig:
    if path is not None:
        data = read_yaml_mapping(path, "backend config", error=InvalidArgument,
                                 expected="a mapping of BackendConfig fields")  # fmt: skip
        return _config_from_mapping(data, str(path))
    env = os.environ if environ is None else environ
    values = {name: env[variable] for name, variable in ENVIRONMENT.items() if env.get(variable)}
    if not values.get("endpoint") and values.get("provider", "kubekms") == "kubekms":
        raise InvalidArgument(
            "no backend given: use --backend-config FILE or set KUBEKMS_ENDPOINT, KUBEKMS_PROJECT_ID and "
            "KUBEKMS_CREDENTIALS_FILE (and KUBEKMS_PROVIDER for another provider)"
        )
    return _config_from_mapping(values, "the environment")


def fail(error: KMSError) -> None:
    click.echo(printable(f"error: {error.identifier}: {error.message}"), err=True)  # the message may quote input
    raise SystemExit(1)


def run_with_backend(config_path: Path | None, action: Callable[[Backend], Awaitable[T]]) -> T:
    """Open the backend, run ``action``, close it; a KMSError exits 1 with one line on stderr."""

    async def run() -> T:
        backend = await open_backend(load_backend_config(config_path))
        try:
            return await action(backend)
        finally:
            await backend.close()

    try:
        return asyncio.run(run())
    except KMSError as error:
        fail(error)
        raise  # unreachable: fail exits


backend_config_option = click.option(
    "--backend-config",
    "backend_config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="YAML with provider, endpoint, project_id, region (gcp: location, key_ring), credentials_file, ca_file "
    "(default: KUBEKMS_* env).",
)
output_option = click.option(
    "-o",
    "--output",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Human table, or JSON for scripts.",
)


def utf8_arguments(function: Callable[P, T]) -> Callable[P, T]:
    """Refuse a command's arguments that are not valid UTF-8 (usage error naming the parameter).

    The shell passes any bytes; Python keeps undecodable ones as lone surrogates, which every
    later ``encode()`` (a request, the keystore, the SDK) would fail on with a traceback.
    """

    @functools.wraps(function)
    def checked(*args: P.args, **kwargs: P.kwargs) -> T:
        context = click.get_current_context()
        for parameter in context.command.params:
            value = context.params.get(parameter.name or "")
            values = value if isinstance(value, tuple | list) else (value,)
            if any(isinstance(item, str) and not inputs.is_clean_text(item) for item in values):
                raise click.BadParameter("is not valid UTF-8", ctx=context, param=parameter)
        return function(*args, **kwargs)

    return checked


def client_command(function: Callable[P, T]) -> Callable[P, T]:
    """Add ``--backend-config`` and ``-o`` to a subcommand, whose arguments must be UTF-8."""
    return functools.wraps(function)(backend_config_option(output_option(utf8_arguments(function))))
