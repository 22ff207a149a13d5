"""Pages from Jinja2 templates (autoescaped) and the security headers every console response carries."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import jinja2
from aiohttp import web

from kubekms.backend import KeyState
from kubekms.wire.v1 import errors as v1_errors

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
NO_STORE = "no-store"
HSTS = "max-age=31536000"

STATE_LABELS = {
    KeyState.ENABLED: "Enabled",
    KeyState.DISABLED: "Disabled",
    KeyState.PENDING_DELETION: "Pending deletion",
    KeyState.PENDING_ACTIVATION: "Pending activation",
    KeyState.PENDING_IMPORT: "Pending import",
    KeyState.DESTROYED: "Destroyed",
}


def _when(moment: datetime | None) -> str:
    return "—" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resources.files(__package__) / "templates")),
        autoescape=True,  # every template, whatever its name
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["when"] = _when
    environment.filters["wire_code"] = v1_errors.error_code  # the code the API answers for the same refusal
    environment.filters["state"] = lambda state: STATE_LABELS.get(state, str(state))
    environment.globals["KeyState"] = KeyState
    return environment


ENVIRONMENT = _environment()


def stylesheet() -> bytes:
    return (resources.files(__package__) / "static" / "console.css").read_bytes()


def page(template: str, context: Mapping[str, Any], *, status: int = 200) -> web.Response:
    body = ENVIRONMENT.get_template(template).render(context)
    return web.Response(text=body, status=status, content_type="text/html", charset="utf-8")


def secure(response: web.StreamResponse, *, tls: bool) -> None:
    """Add the security headers; pages are never cached (the stylesheet may be, briefly)."""
    response.headers.update(SECURITY_HEADERS)
    if "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = NO_STORE
    if tls:
        response.headers["Strict-Transport-Security"] = HSTS
