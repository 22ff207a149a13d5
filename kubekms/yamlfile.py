"""Reading a YAML settings file with one set of clear errors, for every loader of kubekms.

The server config, the principals file, backend configs, credentials files and the plugin
config each validate their own fields; reading the file and refusing what is not YAML, or
not a mapping, is done here once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ErrorFactory = Callable[[str], Exception]


def read_yaml(path: Path, what: str, *, error: ErrorFactory) -> object:
    """The parsed document of ``path``; ``what`` names the file in errors ("config file")."""
    try:
        return yaml.safe_load(path.read_text())
    except OSError as failure:
        raise error(f"cannot read {what} {path}: {failure.strerror}") from None
    except yaml.YAMLError:
        raise error(f"{what} {path} is not valid YAML") from None


def read_yaml_mapping(
    path: Path, what: str, *, error: ErrorFactory, expected: str = "a YAML mapping"
) -> dict[str, Any]:
    """As :func:`read_yaml`, refusing a document that is not a mapping ("``what`` must be ``expected``")."""
    data = read_yaml(path, what, error=error)
    if not isinstance(data, dict):
        raise error(f"{what} {path} must be {expected}")
    return data
