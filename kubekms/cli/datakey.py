"""``kubekms datakey``: data keys wrapped by a backend key.

Plaintext data keys are secrets: they are printed (hex) only when asked for, and read only
from a file or stdin, never from a flag.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from kubekms.backend import Backend, DataKey
from kubekms.cli.backend_access import client_command, run_with_backend
from kubekms.cli.output import data_key_record, emit, fields

aad_option = click.option(
    "--aad", default="", help="Additional authenticated data (UTF-8 text) bound to the ciphertext; not secret."
)


def _read_hex(source: str, what: str) -> bytes:
    """Hex text from a file, or from stdin for ``-``."""
    try:
        raw = sys.stdin.buffer.read() if source == "-" else Path(source).read_bytes()
    except OSError as error:
        raise click.BadParameter(f"cannot read {source}: {error.strerror}") from None
    try:
        return bytes.fromhex("".join(raw.decode("ascii").split()))
    except ValueError:  # UnicodeDecodeError is one
        raise click.BadParameter(f"{what} in {source} must be hex text") from None


@click.group()
def datakey() -> None:
    """Create, encrypt and decrypt data keys."""


@datakey.command("create")
@click.argument("key_ref", metavar="KEY")
@click.option("--length", type=int, default=32, show_default=True, help="Data key length in bytes.")
@click.option("--no-plaintext", is_flag=True, help="Return only the ciphertext.")
@click.option(
    "--ciphertext-out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    metavar="FILE",
    help="Also write the ciphertext (hex) to FILE, for `datakey decrypt --ciphertext-file FILE`.",
)
@aad_option
@client_command
def create(
    key_ref: str,
    length: int,
    no_plaintext: bool,
    ciphertext_out: Path | None,
    aad: str,
    backend_config: Path | None,
    output: str,
) -> None:
    """Create a data key under KEY: its ciphertext (and plaintext, hex)."""

    async def make(backend: Backend) -> DataKey:
        if no_plaintext:
            return await backend.create_data_key_without_plaintext(key_ref, length=length, aad=aad.encode())
        return await backend.create_data_key(key_ref, length=length, aad=aad.encode())

    record = data_key_record(run_with_backend(backend_config, make))
    if ciphertext_out is not None:
        try:
            ciphertext_out.write_text(record["ciphertext"] + "\n")  # not secret: the plaintext never goes there
        except OSError as error:
            raise click.FileError(str(ciphertext_out), error.strerror) from None
    emit(output, record, fields(record))


@datakey.command("encrypt")
@click.argument("key_ref", metavar="KEY")
@click.option(
    "--plaintext-file", required=True, metavar="FILE", help="File holding the data key as hex text ('-' for stdin)."
)
@aad_option
@client_command
def encrypt(key_ref: str, plaintext_file: str, aad: str, backend_config: Path | None, output: str) -> None:
    """Wrap a data key you have under KEY."""
    plaintext = _read_hex(plaintext_file, "the data key")
    record = data_key_record(
        run_with_backend(backend_config, lambda backend: backend.encrypt_data_key(key_ref, plaintext, aad=aad.encode()))
    )
    emit(output, record, fields(record))


@datakey.command("decrypt")
@click.argument("key_ref", metavar="KEY")
@click.option("--ciphertext", "ciphertext_hex", default=None, help="The ciphertext, hex.")
@click.option(
    "--ciphertext-file", default=None, metavar="FILE", help="File with the ciphertext as hex ('-' for stdin)."
)
@aad_option
@client_command
def decrypt(
    key_ref: str,
    ciphertext_hex: str | None,
    ciphertext_file: str | None,
    aad: str,
    backend_config: Path | None,
    output: str,
) -> None:
    """Unwrap a data key: print its plaintext (hex)."""
    if (ciphertext_hex is None) == (ciphertext_file is None):
        raise click.UsageError("give exactly one of --ciphertext and --ciphertext-file")
    if ciphertext_file is not None:
        ciphertext = _read_hex(ciphertext_file, "the ciphertext")
    else:
        try:
            ciphertext = bytes.fromhex(ciphertext_hex or "")
        except ValueError:
            raise click.BadParameter("must be hex", param_hint="--ciphertext") from None
    if not ciphertext:
        raise click.BadParameter("the ciphertext is empty", param_hint="--ciphertext")
    plaintext = run_with_backend(
        backend_config, lambda backend: backend.decrypt_data_key(key_ref, ciphertext, aad=aad.encode())
    )
    emit(output, {"plaintext": plaintext.hex(), "length": len(plaintext)}, plaintext.hex())
