"""Huawei's version discovery (show_versions ``GET /``, show_version ``GET /{version_id}``): the one API version this
server offers, v1.0, in Huawei's ApiVersionDetail shape. Unsigned, as Huawei's: it names no project nor key."""

from __future__ import annotations

from typing import Any

from kubekms.errors import NotFound

VERSION_ID = "v1.0"
VERSION_UPDATED = "2026-12-01T00:00:00Z"  # this wire's last change of shape


def version_detail(endpoint: str) -> dict[str, Any]:
    """``endpoint``: the server's base URL as the client reached it (``http://host:port``), no trailing slash."""
    return {
        "id": VERSION_ID,
        "links": [{"href": f"{endpoint}/{VERSION_ID}/", "rel": "self"}],
        "version": "",  # no microversions
        "status": "CURRENT",
        "updated": VERSION_UPDATED,
        "min_version": "",
    }


def versions_answer(endpoint: str) -> dict[str, Any]:
    return {"versions": [version_detail(endpoint)]}


def version_answer(version_id: str, endpoint: str) -> dict[str, Any]:
    if version_id != VERSION_ID:
        raise NotFound(f"API version {version_id[:16]!r} is not offered; this server offers {VERSION_ID}")
    return {"version": version_detail(endpoint)}
