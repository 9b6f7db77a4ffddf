"""Small helpers shared by the views: JSON bodies through schemas, paging arguments."""

from __future__ import annotations

from typing import Any

from flask import current_app, request
from marshmallow import Schema
from werkzeug.routing import IntegerConverter

from server.errors import MusterError
from sync.protocol import ErrorCode


def load_json(schema: Schema) -> Any:
    """Validate the request's JSON body with ``schema``; errors leave in the one error shape."""
    if not request.is_json:
        raise MusterError(
            "Send a JSON body with Content-Type: application/json.",
            code=ErrorCode.UNSUPPORTED_MEDIA_TYPE,
        )
    body = request.get_json(silent=True)
    if body is None:
        raise MusterError("The body is not valid JSON.", code=ErrorCode.BAD_REQUEST)
    refuse_nul(body)
    return schema.load(body)


def has_nul(value: Any) -> bool:
    """True when a string anywhere in ``value`` (keys included) holds a NUL character."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(v) for v in value)
    return False


def refuse_nul(value: Any) -> None:
    """Refuse text with NUL characters: PostgreSQL cannot store them (it would be a 500)."""
    if has_nul(value):
        raise MusterError("Text may not contain NUL characters.", code=ErrorCode.BAD_REQUEST)


def paging(default: int = 100, maximum: int = 1000) -> tuple[int, int]:
    """Read ``limit`` and ``offset`` query arguments, bounded."""
    try:
        limit = int(request.args.get("limit", default))
        offset = int(request.args.get("offset", 0))
    except ValueError as exc:
        raise MusterError("limit and offset are integers.", code=ErrorCode.BAD_REQUEST) from exc
    if not 1 <= limit <= maximum or not 0 <= offset <= 2**63 - 1:
        raise MusterError(
            f"limit is 1..{maximum} and offset is 0 or more.", code=ErrorCode.BAD_REQUEST
        )
    return limit, offset


class IdConverter(IntegerConverter):
    """``<int:...>`` in URLs, capped at 64 bits: a larger id answers 404 instead of overflowing
    the database driver (a 500)."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", 2**63 - 1)
        super().__init__(map, *args, **kwargs)


def reject_unknown_query() -> None:
    """Refuse query parameters a JSON API view does not declare, as bodies refuse unknown fields.

    A misspelt filter (``?stat=missing``) would otherwise be ignored silently and answer with
    everything. The names a view takes are the ``query`` of its ``api_doc``.
    """
    if request.endpoint is None or not request.path.startswith("/api/v1/"):
        return
    view = current_app.view_functions[request.endpoint]
    allowed = set(getattr(view, "_api_doc", {}).get("query", {}))
    refuse_nul([[k, v] for k, v in request.args.items(multi=True)])
    if set(request.args) - allowed:
        raise MusterError(
            "Unknown query parameter.",
            code=ErrorCode.BAD_REQUEST,
            details={"allowed": sorted(allowed)},
        )
