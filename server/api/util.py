"""Small helpers shared by the views: JSON bodies through schemas, paging arguments."""

from __future__ import annotations

from typing import Any

from flask import request
from marshmallow import Schema

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
    return schema.load(body)


def paging(default: int = 100, maximum: int = 1000) -> tuple[int, int]:
    """Read ``limit`` and ``offset`` query arguments, bounded."""
    try:
        limit = int(request.args.get("limit", default))
        offset = int(request.args.get("offset", 0))
    except ValueError as exc:
        raise MusterError("limit and offset are integers.", code=ErrorCode.BAD_REQUEST) from exc
    if not 1 <= limit <= maximum or offset < 0:
        raise MusterError(
            f"limit is 1..{maximum} and offset is 0 or more.", code=ErrorCode.BAD_REQUEST
        )
    return limit, offset
