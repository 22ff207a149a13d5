"""``kubekms encrypt`` / ``kubekms decrypt``: files in the AWS Encryption SDK's message format.

Backends: the default one, named ``default``, comes from ``--backend-config FILE`` or the
``KUBEKMS_*`` environment as for the other client subcommands; more come from ``--backend
NAME=FILE`` (a YAML file of BackendConfig fields each). ``--key NAME:KEY`` names a key of
backend NAME; a ``--key`` without a configured NAME prefix is a key of ``default`` (so an AWS
key ARN ``arn:aws:kms:...`` is a key, not a backend named ``arn``).

Output to a file goes to a temporary file beside it (mode 0600), renamed over OUT only when
the whole message was processed and verified: a failure leaves OUT as it was.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import click

from kubekms.cli.backend_access import (
    ENVIRONMENT,
    backend_config_option,
    fail,
    load_backend_config,
    utf8_arguments,
)
from kubekms.cli.output import printable
from kubekms.cli.pairs import key_value_pairs
from kubekms.errors import KMSError
from kubekms.providers import BackendConfig

DEFAULT_BACKEND = "default"
# kubekms.envelope (the AWS Encryption SDK, boto3) is imported inside the commands: the other
# subcommands do not pay its import time.


class _FileProblem(Exception):
    """IN cannot be read or OUT's directory cannot be written."""


backend_option = click.option(
    "--backend",
    "named_backends",
    multiple=True,
    metavar="NAME=FILE",
    help="A further backend, NAME for --key NAME:KEY, FILE a YAML of BackendConfig fields (repeatable).",
)
context_option = click.option(
    "--context",
    "context_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Encryption context pair (repeatable); not secret, stored in the message's header.",
)


def _named_backends(named: Sequence[str]) -> dict[str, BackendConfig]:
    backends: dict[str, BackendConfig] = {}
    for entry in named:
        name, separator, path = entry.partition("=")
        if not separator or not name or not path or ":" in name:
            raise click.BadParameter(f"{entry!r} is not NAME=FILE (NAME without ':')", param_hint="--backend")
        if name in backends or name == DEFAULT_BACKEND:
            raise click.BadParameter(f"backend name {name!r} given twice or reserved", param_hint="--backend")
        backends[name] = load_backend_config(Path(path).expanduser())
    return backends


def _with_default(backends: dict[str, BackendConfig], config_path: Path | None) -> dict[str, BackendConfig]:
    """Add backend ``default`` when asked for (--backend-config, KUBEKMS_*) or when it is the only one possible."""
    from_environment = any(os.environ.get(variable) for variable in ENVIRONMENT.values())
    if config_path is not None or from_environment or not backends:
        backends[DEFAULT_BACKEND] = load_backend_config(config_path)
    return backends


@contextlib.contextmanager
def _input(path: str) -> Iterator[tuple[BinaryIO, int | None]]:
    """The source and its length when known (a regular file)."""
    if path == "-":
        yield sys.stdin.buffer, None
        return
    try:
        handle = open(path, "rb")  # noqa: SIM115 (closed below; the SDK may close it too)
    except OSError as error:
        raise _FileProblem(f"cannot read {path}: {error.strerror}") from None
    with handle:
        size = os.fstat(handle.fileno()).st_size if Path(path).is_file() else None
        yield handle, size


@contextlib.contextmanager
def _output(path: str) -> Iterator[BinaryIO]:
    """stdout, or a temporary file in OUT's directory renamed over OUT only on success."""
    if path == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    target = Path(path)
    try:
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    except OSError as error:
        raise _FileProblem(f"cannot write beside {path}: {error.strerror}") from None
    try:
        with os.fdopen(descriptor, "wb") as sink:
            yield sink
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def _progress(source: BinaryIO, size: int | None, label: str) -> Iterator[Callable[[], None] | None]:
    """A progress bar on stderr, only when stderr is a terminal and the input's size is known."""
    if size is None or not sys.stderr.isatty():
        yield None
        return
    with click.progressbar(length=size, label=label, file=sys.stderr) as bar:

        def advance() -> None:
            bar.update(source.tell() - bar.pos)

        yield advance


def _terminated(signal_number: int, frame: object) -> None:
    raise SystemExit(128 + signal_number)  # unwinds _output, which removes its temporary file


def _run(action: Callable[[], None]) -> None:
    from kubekms.envelope import EnvelopeError

    # Python's default for SIGTERM and SIGHUP ends the process on the spot, leaving a partial OUT (plaintext)
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, _terminated)

    # The SDK logs expected failures (a key that cannot unwrap) with tracebacks; we report them ourselves.
    sdk_logger = logging.getLogger("aws_encryption_sdk")
    sdk_logger.addHandler(logging.NullHandler())
    sdk_logger.propagate = False
    try:
        action()
    except KMSError as error:
        fail(error)
    except (EnvelopeError, _FileProblem) as error:
        click.echo(printable(f"error: {error}"), err=True)  # reasons quote backends' answers
        raise SystemExit(1) from None
    except OSError as error:  # a full disk, a closed pipe: the temporary file is already gone
        click.echo(f"error: input/output failed: {error.strerror or error}", err=True)
        raise SystemExit(1) from None


@click.command("encrypt")
@click.argument("source", metavar="IN")
@click.argument("destination", metavar="OUT")
@click.option(
    "--key",
    "keys",
    multiple=True,
    required=True,
    metavar="[NAME:]KEY",
    help="Key to encrypt under: id, alias (or ARN, alias/x on aws) of backend NAME (default: 'default'). "
    "Repeatable: any one of the keys decrypts; the first makes the data key.",
)
@context_option
@click.option("--signed", is_flag=True, help="Sign the message (ECDSA P-384): slower, unforgeable by decrypters.")
@backend_option
@backend_config_option
@utf8_arguments
def encrypt(
    source: str,
    destination: str,
    keys: Sequence[str],
    context_pairs: Sequence[str],
    signed: bool,
    named_backends: Sequence[str],
    backend_config: Path | None,
) -> None:
    """Encrypt IN to OUT ('-': stdin/stdout) in the AWS Encryption SDK's message format."""
    context = key_value_pairs(context_pairs, "--context")

    def action() -> None:
        from kubekms.envelope import FRAME_BYTES, Envelope, KeyRef, Keyring
        from kubekms.envelope.allocator import LARGE_FRAME_BYTES, keep_frame_buffers_on_heap

        # this process's job is streaming: frame buffers reused, not page-faulted in anew, so larger frames pay
        frame_bytes = LARGE_FRAME_BYTES if keep_frame_buffers_on_heap() else FRAME_BYTES

        named = _named_backends(named_backends)
        refs = [KeyRef.parse(key, {*named, DEFAULT_BACKEND}, DEFAULT_BACKEND) for key in keys]
        used = {ref.backend for ref in refs}
        if DEFAULT_BACKEND in used:
            named[DEFAULT_BACKEND] = load_backend_config(backend_config)
        with (
            Keyring({name: config for name, config in named.items() if name in used}, refs) as keyring,
            _input(source) as (reader, size),
            _output(destination) as writer,
            _progress(reader, size, "encrypting") as progress,
        ):
            Envelope(keyring, signed=signed, frame_bytes=frame_bytes).encrypt_stream(
                reader, writer, context, source_length=size, progress=progress
            )

    _run(action)


@click.command("decrypt")
@click.argument("source", metavar="IN")
@click.argument("destination", metavar="OUT")
@click.option(
    "--key",
    "keys",
    multiple=True,
    metavar="[NAME:]KEY",
    help="Accept only a data key wrapped under this key (as for encrypt; repeatable). Without --key, any key "
    "of the message that the credentials may use decrypts it.",
)
@context_option
@backend_option
@backend_config_option
@utf8_arguments
def decrypt(
    source: str,
    destination: str,
    keys: Sequence[str],
    context_pairs: Sequence[str],
    named_backends: Sequence[str],
    backend_config: Path | None,
) -> None:
    """Decrypt the message IN to OUT ('-': stdin/stdout) with any configured backend that holds one of its keys.

    With --key, only under those keys: a message someone else made under another key the
    credentials may use is refused. Every --context pair must be in the message's encryption
    context, or nothing is written.
    To a file, OUT appears only once the whole message verified. To stdout ('-'), plaintext is
    written frame by frame as each frame authenticates: on a truncated or tampered message the
    exit status is 1 and what was already written is incomplete and must be discarded.
    """
    required = key_value_pairs(context_pairs, "--context")

    def action() -> None:
        from kubekms.envelope import Envelope, KeyRef, Keyring
        from kubekms.envelope.allocator import keep_frame_buffers_on_heap

        keep_frame_buffers_on_heap()  # as for encrypt (the frame size is the message's)
        configured = _with_default(_named_backends(named_backends), backend_config)
        refs = [KeyRef.parse(key, configured, DEFAULT_BACKEND) for key in keys]
        with (
            Keyring(configured, refs, strict=bool(refs)) as keyring,
            _input(source) as (reader, size),
            _output(destination) as writer,
            _progress(reader, size, "decrypting") as progress,
        ):
            Envelope(keyring).decrypt_stream(reader, writer, required_context=required, progress=progress)

    _run(action)
