"""Console security: CSRF on every form, session cookies, security headers, HTML error pages.

CSRF uses Flask-WTF's ``CSRFProtect`` with the app-wide check switched off
(``WTF_CSRF_CHECK_DEFAULT = False``) and called from the console blueprint only: the JSON API
authenticates with bearer tokens, which a cross-site form cannot send, so it needs no token.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Request, Response, redirect, render_template, request, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError, CSRFProtect

from server.console.blueprint import bp
from server.errors import CatchingUp, MusterError, Unauthorized

csrf = CSRFProtect()

#: No script at all; styles and images from this origin; inline SVG is markup, not script.
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"


class ConsoleSessionInterface(SecureCookieSessionInterface):
    """Signed cookie sessions whose cookie is ``Secure`` whenever the request came over TLS.

    ``SESSION_COOKIE_SECURE = True`` forces it for deployments where TLS ends at a proxy that
    does not pass ``X-Forwarded-Proto``.
    """

    def get_cookie_secure(self, app: Flask) -> bool:
        if app.config.get("SESSION_COOKIE_SECURE"):
            return True
        from flask import has_request_context

        return has_request_context() and request.is_secure


def _is_console(req: Request) -> bool:
    return req.blueprint == "console"


@bp.before_request
def check_csrf() -> None:
    """Refuse any state-changing console request without a valid CSRF token."""
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()


@bp.after_request
def security_headers(resp: Response) -> Response:
    """Headers for every console response; pages (not the stylesheet) are never cached."""
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Referrer-Policy"] = "same-origin"
    resp.headers["Content-Security-Policy"] = CSP
    if request.is_secure:
        resp.headers["Strict-Transport-Security"] = HSTS
    if request.endpoint != "console.static":
        # Pages show names, states and (to coordinators) documents: keep them out of caches.
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["Pragma"] = "no-cache"
    return resp


@bp.errorhandler(CSRFError)
def csrf_refused(exc: CSRFError) -> tuple[str, int]:
    return render_template(
        "console/error.html",
        status=400,
        message=_("The form expired or did not come from this console. Reload and try again."),
    ), 400


@bp.errorhandler(MusterError)
def muster_error(exc: MusterError) -> Any:
    """Our own errors as an HTML page; an unauthenticated visitor is sent to the login page."""
    if isinstance(exc, Unauthorized):
        return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
    if isinstance(exc, CatchingUp):
        # Figures that miss acknowledged records are never shown: a page reloads itself; a
        # form (a resolution) changed nothing and is sent again by hand.
        count = f"{int(exc.details['events_waiting']):,}"
        if request.method == "GET":
            message = _(
                "Reconciliation is catching up with %(count)s records received in the last "
                "minutes. This page reloads by itself.",
                count=count,
            )
        else:
            message = _(
                "Reconciliation is catching up with %(count)s records received in the last "
                "minutes; nothing was changed. Send the form again in a few seconds.",
                count=count,
            )
        page = render_template(
            "console/error.html",
            status=exc.status,
            message=message,
            refresh=exc.retry_after if request.method == "GET" else None,
        )
        return page, exc.status, {"Retry-After": str(exc.retry_after)}
    messages = {
        404: _("Not found, or not assigned to you."),
        403: _("Your role does not allow this."),
    }
    return render_template(
        "console/error.html",
        status=exc.status,
        message=messages.get(exc.status, exc.message),
    ), exc.status


@bp.errorhandler(404)
def not_found(exc: Exception) -> tuple[str, int]:
    return render_template(
        "console/error.html", status=404, message=_("Not found, or not assigned to you.")
    ), 404


def init_app(app: Flask) -> None:
    """Session cookie policy and the CSRF extension (checked by the console blueprint only)."""
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", 12 * 3600)
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.session_interface = ConsoleSessionInterface()
    csrf.init_app(app)
