"""The ``console:`` section of the server's config file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SESSION_SECONDS = (1, 86_400)
SESSIONS_FILE = "console-sessions.db"  # in the server's state_dir, shared by its worker processes


@dataclass(frozen=True)
class ConsoleSettings:
    """``enabled``: serve the web console under ``/console/`` (default true).

    ``session_seconds``: a signed-in session ends this many seconds after sign-in, whatever
    is done in it (default 1800, 1 to 86400).

    ``sessions_file``: where signed-in sessions are kept for every worker process (not a
    setting of the file: ``state_dir``/console-sessions.db; a server with a shared PostgreSQL
    database keeps them there instead); None keeps them in memory.
    """

    enabled: bool = True
    session_seconds: int = 1800
    sessions_file: Path | None = None

    @classmethod
    def from_config(cls, data: object, *, sessions_file: Path | None = None) -> ConsoleSettings:
        """The parsed ``console:`` mapping (None: defaults); a ValueError names the bad setting."""
        if data is None:
            return cls(sessions_file=sessions_file)
        if not isinstance(data, dict):
            raise ValueError("console must be a mapping (enabled, session_seconds)")
        unknown = sorted(set(data) - {"enabled", "session_seconds"})
        if unknown:
            raise ValueError(f"console: unknown settings {', '.join(map(str, unknown))}")
        enabled = data.get("enabled", True)
        if not isinstance(enabled, bool):
            raise ValueError("console.enabled must be true or false")
        seconds = data.get("session_seconds", 1800)
        low, high = SESSION_SECONDS
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not low <= seconds <= high:
            raise ValueError(f"console.session_seconds must be a whole number from {low} to {high}")
        return cls(enabled=enabled, session_seconds=seconds, sessions_file=sessions_file)


DEFAULTS = ConsoleSettings()
