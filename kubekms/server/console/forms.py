"""The console's form bodies: urlencoded only, bounded, strictly decoded, CSRF-checked.

Every refusal is an :class:`~kubekms.errors.InvalidArgument` (a 400 page with code and text),
never a ValueError or UnicodeDecodeError escaping into a 500.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qsl

from aiohttp import web

from kubekms.errors import AccessDenied, InvalidArgument, Reason
from kubekms.wire import inputs

FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
MAX_FIELDS = 32
MAX_FIELD_CHARS = 4096
CSRF_FIELD = "csrf"
CSRF_REFUSED_CODE = "CONSOLE.CSRF"


class MalformedForm(InvalidArgument):
    default_reason = Reason.MALFORMED_BODY


class Form:
    def __init__(self, fields: dict[str, str]) -> None:
        self._fields = fields

    def text(self, name: str, *, max_chars: int = MAX_FIELD_CHARS, required: bool = False) -> str:
        value = self._fields.get(name, "")
        if required and not value:
            raise InvalidArgument(f"{name.replace('_', ' ')} is required")
        return inputs.text(value, name.replace("_", " "), max_chars=max_chars)

    def integer(self, name: str, bounds: tuple[int, int]) -> int:
        return inputs.integer(self._fields.get(name, "").strip(), name.replace("_", " "), bounds, allow_text=True)

    def checked(self, name: str) -> bool:
        return name in self._fields

    def check_csrf(self, expected: str) -> None:
        """The form's CSRF token must equal ``expected`` (compared in constant time, as bytes)."""
        sent = self._fields.get(CSRF_FIELD, "").encode("utf-8", "surrogatepass")
        if not sent or not hmac.compare_digest(sent, expected.encode()):
            raise AccessDenied("the form's CSRF token is missing or wrong: reload the page", code=CSRF_REFUSED_CODE)


async def read_form(request: web.Request, max_bytes: int) -> Form:
    if request.content_type != FORM_CONTENT_TYPE:
        raise MalformedForm(f"a console form is sent as {FORM_CONTENT_TYPE}")
    body = await inputs.read_body(request, max_bytes)
    try:
        pairs = parse_qsl(
            body.decode("ascii"), keep_blank_values=True, max_num_fields=MAX_FIELDS, encoding="utf-8", errors="strict"
        )
    except ValueError:  # UnicodeDecodeError is one; so are too many fields
        raise MalformedForm(f"the form is not valid (UTF-8 percent-encoded, at most {MAX_FIELDS} fields)") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise MalformedForm("the form names a field twice")
        fields[name] = value
    return Form(fields)
