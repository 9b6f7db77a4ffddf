"""Console log-in and log-out, the session's staff member, language choice, login rate limit.

A console session holds an API token issued by ``server.staff.service.login`` (label
``console``). Every page looks the token up with ``server.auth.tokens.lookup``, exactly as the
API does for a bearer token, so expiry, revocation and disabled accounts behave the same in
both, and role checks go through the same ``server.auth.access`` helpers with ``g.staff``.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Flask,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import Babel
from flask_babel import gettext as _
from werkzeug.wrappers import Response

from server.auth import tokens
from server.console.blueprint import bp
from server.errors import MusterError
from server.ratelimit import TokenBucketLimiter, parse_rate
from server.staff import service

LANGUAGES = {"en": "English", "zh_Hans": "简体中文"}
LIMITER_KEY = "muster.console.login_limiter"


def select_locale() -> str:
    """The language the user chose (kept in the session), else the browser's preference."""
    chosen = session.get("lang")
    if chosen in LANGUAGES:
        return str(chosen)
    best = request.accept_languages.best_match(["en", "zh", "zh-CN", "zh-Hans"])
    return "zh_Hans" if best and best.startswith("zh") else "en"


def _safe_next(target: str | None) -> str:
    """A local path to return to; anything pointing at another site goes to the start page."""
    if not target:
        return url_for("console.operations")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("console.operations")
    return target


@bp.before_request
def load_staff() -> None:
    """Authenticate the session's token; pages that need a login raise ``Unauthorized`` later."""
    from server.setup import get_keyring

    if not current_app.secret_key:
        get_keyring()  # sets app.secret_key from the keyring (after a restart or key rotation)
    g.staff = None
    secret = session.get("token")
    if secret:
        row = tokens.lookup(secret)
        if row is None:
            session.pop("token", None)
        else:
            g.staff, g.token = row.staff, row


def _limited(username: str) -> int:
    """Seconds to wait before another login attempt from this address and username, or 0."""
    limiter = current_app.extensions.get(LIMITER_KEY)
    if limiter is None:
        return 0
    key = f"{request.remote_addr or '-'}|{username[:200].lower()}"
    return math.ceil(limiter.take(key))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """The log-in form; on success the session gets a fresh token and the user's language."""
    error = None
    status = 200
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        wait = _limited(username)
        if wait > 0:
            error = _("Too many attempts. Wait %(seconds)d seconds and try again.", seconds=wait)
            status = 429
        else:
            try:
                secret, _row = service.login(
                    username,
                    password,
                    ttl_hours=current_app.config["TOKEN_TTL_HOURS"],
                    label="console",
                )
            except MusterError:
                error = _("Wrong username or password.")
                status = 401
            else:
                lang = session.get("lang")
                session.clear()  # a new session for a new login: no state carried across
                session.permanent = True
                session["token"] = secret
                if lang:
                    session["lang"] = lang
                return redirect(_safe_next(request.args.get("next")), code=303)
    resp = render_template("console/login.html", error=error, next=request.args.get("next", ""))
    if status == 429:
        return resp, 429, {"Retry-After": str(wait)}
    return resp, status


@bp.post("/logout")
def logout() -> Response:
    """Revoke the session's token and forget the session (the language choice stays)."""
    if getattr(g, "token", None) is not None:
        tokens.revoke(g.token)
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    return redirect(url_for("console.login"), code=303)


@bp.post("/lang")
def set_language() -> Response:
    """Remember the chosen language in the session and go back to the page."""
    lang = request.form.get("lang", "")
    if lang in LANGUAGES:
        session["lang"] = lang
    return redirect(_safe_next(request.form.get("next")), code=303)


def init_app(app: Flask) -> None:
    """Babel with the console's catalogues, and the login limiter (``RATE_LIMIT_LOGIN``)."""
    app.config.setdefault("BABEL_DEFAULT_LOCALE", "en")
    Babel(
        app,
        locale_selector=select_locale,
        default_translation_directories="console/translations",
    )
    rate = parse_rate(app.config.get("RATE_LIMIT_LOGIN"))
    app.extensions[LIMITER_KEY] = TokenBucketLimiter(rate) if rate else None
