"""``GET /healthz``: is the server up, which database, which schema version."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from server import migrations
from server.db import backend_name, database
from sync.protocol import PROTOCOL_VERSION

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> dict[str, Any]:
    database.execute_sql("SELECT 1")
    return {
        "status": "ok",
        "database": backend_name(database),
        "schema_version": migrations.schema_version(database.obj),
        "protocol_version": PROTOCOL_VERSION,
    }
