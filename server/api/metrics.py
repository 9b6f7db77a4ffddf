"""``GET /metrics``: Prometheus text format, for an admin token or a direct loopback scrape."""

from __future__ import annotations

import ipaddress

from flask import Blueprint, Response, current_app, request

from server.auth import tokens
from server.errors import Forbidden, Unauthorized
from server.ops.metrics import render

bp = Blueprint("metrics", __name__)

#: Headers a reverse proxy adds; their presence means the loopback peer is only the proxy.
_PROXY_HEADERS = ("X-Forwarded-For", "X-Real-IP", "Forwarded")


def _direct_loopback() -> bool:
    """A scraper on this host talking to us directly, not a client relayed by nginx."""
    if any(h in request.headers for h in _PROXY_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.remote_addr or "").is_loopback
    except ValueError:
        return False


@bp.get("/metrics")
def metrics() -> Response:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() == "bearer" and secret:
        row = tokens.lookup(secret.strip())
        if row is None:
            raise Unauthorized("The token is unknown, expired or revoked.")
        if row.staff.role != "admin":
            raise Forbidden("This needs the admin role.")
    elif not (current_app.config["METRICS_ALLOW_LOOPBACK"] and _direct_loopback()):
        raise Unauthorized("Send 'Authorization: Bearer <admin token>', or scrape from loopback.")
    return Response(render(), mimetype="text/plain; version=0.0.4; charset=utf-8")
