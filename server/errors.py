"""One JSON error shape for the whole API: ``{"error": {"code", "message", "details"}}``.

Every error leaves through :func:`error_response`. Messages never contain personal data: they
name fields, line numbers and codes, never values from a roster or an event.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import peewee
from flask import Flask, Response, jsonify
from marshmallow import ValidationError
from werkzeug.exceptions import HTTPException

from sync.protocol import ErrorCode

log = logging.getLogger("muster.errors")

#: The HTTP status each error code is answered with.
STATUS: dict[ErrorCode, int] = {
    ErrorCode.BAD_REQUEST: 400,
    ErrorCode.VALIDATION_FAILED: 422,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.INVALID_CREDENTIALS: 401,
    ErrorCode.TOKEN_EXPIRED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.CONFLICT: 409,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: 415,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.SERVICE_UNAVAILABLE: 503,
    ErrorCode.ROSTER_INVALID: 422,
    ErrorCode.ROSTER_UNREADABLE: 400,
    ErrorCode.PROTOCOL_VERSION_UNSUPPORTED: 426,
    ErrorCode.ENROLMENT_CODE_INVALID: 403,
    ErrorCode.DEVICE_UNKNOWN: 401,
    ErrorCode.DEVICE_REVOKED: 403,
    ErrorCode.SIGNATURE_INVALID: 401,
    ErrorCode.CURSOR_RESET: 409,
    ErrorCode.STALE_RESOLUTION: 409,
    ErrorCode.CATCHING_UP: 503,
}

_HTTP_CODES: dict[int, ErrorCode] = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    409: ErrorCode.CONFLICT,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    422: ErrorCode.VALIDATION_FAILED,
    429: ErrorCode.RATE_LIMITED,
    503: ErrorCode.SERVICE_UNAVAILABLE,
}


class MusterError(Exception):
    """Root of the server's own exceptions; each carries a stable code and safe message.

    Tree: ``MusterError`` > ``NotFound``, ``Forbidden``, ``Unauthorized``, ``Conflict``,
    ``InvalidInput`` (and the sync errors in ``server.sync``).
    """

    code: ErrorCode = ErrorCode.BAD_REQUEST

    #: Seconds a client should wait before sending the same request again (``Retry-After``).
    retry_after: int | None = None

    def __init__(self, message: str, *, code: ErrorCode | None = None, details: Any = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.details = details

    @property
    def status(self) -> int:
        return STATUS.get(self.code, 400)


class NotFound(MusterError):
    code = ErrorCode.NOT_FOUND


class Forbidden(MusterError):
    code = ErrorCode.FORBIDDEN


class Unauthorized(MusterError):
    code = ErrorCode.UNAUTHORIZED


class Conflict(MusterError):
    code = ErrorCode.CONFLICT


class InvalidInput(MusterError):
    code = ErrorCode.VALIDATION_FAILED


class CatchingUp(MusterError):
    """Derived state is further behind the acknowledged events than one request may make up:
    staff read again shortly (``server.reconcile.backlog.catch_up``)."""

    code = ErrorCode.CATCHING_UP
    retry_after = 5

    def __init__(self, events_waiting: int) -> None:
        super().__init__(
            "Reconciliation is catching up with records received in the last minutes; "
            "read again in a few seconds.",
            details={"events_waiting": events_waiting},
        )


def error_body(code: ErrorCode, message: str, details: Any = None) -> dict[str, Any]:
    """Build the one error body used everywhere (API views, CLI ``--json``, sync answers)."""
    return {"error": {"code": str(code), "message": message, "details": details or {}}}


def error_response(
    code: ErrorCode, message: str, details: Any = None, status: int | None = None
) -> Response:
    resp = jsonify(error_body(code, message, details))
    resp.status_code = status or STATUS.get(code, 400)
    return resp


def init_app(app: Flask) -> None:
    """Register the handlers that turn every failure into the one error shape."""

    @app.errorhandler(MusterError)
    def _muster(exc: MusterError) -> Response:
        resp = error_response(exc.code, exc.message, exc.details, exc.status)
        if exc.retry_after is not None:
            resp.headers["Retry-After"] = str(exc.retry_after)
        return resp

    @app.errorhandler(ValidationError)
    def _validation(exc: ValidationError) -> Response:
        return error_response(
            ErrorCode.VALIDATION_FAILED,
            "The request did not validate; see details for each field.",
            {"fields": exc.messages},
        )

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = _HTTP_CODES.get(status, ErrorCode.BAD_REQUEST)
        resp = error_response(code, HTTPStatus(status).phrase + ".", None, status)
        if status == 405 and exc.valid_methods:  # type: ignore[attr-defined]
            resp.headers["Allow"] = ", ".join(exc.valid_methods)  # type: ignore[attr-defined]
        return resp

    @app.errorhandler(peewee.OperationalError)
    def _database_busy(exc: peewee.OperationalError) -> Response:
        # A lock wait that timed out, a deadlock, a lost connection: nothing was committed,
        # so the client may safely send the same request again.
        log.warning("database unavailable", extra={"error_type": type(exc).__name__})
        resp = error_response(
            ErrorCode.SERVICE_UNAVAILABLE, "The database is busy; try again shortly.", None, 503
        )
        resp.headers["Retry-After"] = "2"
        return resp

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        # Log the type and the place only: exception text can carry personal data.
        log.error(
            "unhandled error",
            extra={"error_type": type(exc).__name__, "where": _where(exc)},
        )
        return error_response(ErrorCode.INTERNAL_ERROR, "Internal server error.", None, 500)


def _where(exc: BaseException) -> str:
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return "?"
    return f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
