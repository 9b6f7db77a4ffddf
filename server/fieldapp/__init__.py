"""The field app: an offline-first PWA served at ``/field/`` (plain ES modules, no build step).

The service worker is served from ``/field/sw.js`` so its default scope is ``/field/``. Every
file is static; the app talks to the sync API (``/api/v1/sync/...``) like the Python device.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, abort, redirect, send_from_directory

STATIC = Path(__file__).resolve().parent / "static"
# Served types the browser must get right: modules need a JavaScript type, the manifest its own.
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".webmanifest": "application/manifest+json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
# Everything comes from this origin; camera frames stay in the page (no external fetches).
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'"
)

bp = Blueprint("fieldapp", __name__)


@bp.get("/field")
def field_root() -> Response:
    """Send the bare path to the app's scope, so relative URLs resolve under ``/field/``."""
    return redirect("/field/", code=308)  # type: ignore[return-value]


@bp.get("/field/")
@bp.get("/field/<path:name>")
def field_file(name: str = "index.html") -> Response:
    """Serve one file of the app shell with its type and cache policy."""
    suffix = Path(name).suffix
    if suffix not in TYPES or ".." in Path(name).parts:
        abort(404)
    resp = send_from_directory(STATIC, name, mimetype=TYPES[suffix], max_age=0)
    # The service worker caches the shell; the network copy must always be revalidated so a
    # new release reaches the phone on its next online load.
    resp.headers["Cache-Control"] = "no-cache"
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["Referrer-Policy"] = "no-referrer"
    if name == "sw.js":
        resp.headers["Service-Worker-Allowed"] = "/field/"
    return resp
