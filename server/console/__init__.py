"""The staff console: server-rendered pages at ``/console/`` over the same services as the API.

No front-end build step and no script: plain HTML forms, one small stylesheet and inline SVG
computed on the server, so pages are fast on a slow link and readable on a 375-px phone.
``init_app`` wires the pieces the pages need: Flask-Babel (English and Simplified Chinese),
Flask-WTF's CSRF check (console forms only), session cookies that turn ``Secure`` under TLS,
the login rate limiter and the security headers.
"""

from __future__ import annotations

import datetime as dt

from flask import Flask

from server.console import auth, security, views
from server.console.blueprint import bp


def init_app(app: Flask) -> None:
    """Register the console blueprint and the extensions it relies on."""
    security.init_app(app)
    auth.init_app(app)
    views.init_app(app)
    app.config.setdefault("PERMANENT_SESSION_LIFETIME", dt.timedelta(hours=12))
    app.register_blueprint(bp)


__all__ = ["bp", "init_app"]
