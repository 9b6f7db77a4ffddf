"""Muster's sync server: the Flask application factory.

app = create_app()              # settings from instance/config.py and MUSTER_* variables
app = create_app({"DATABASE_URL": "sqlite:///test.db", ...})   # tests
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the Muster server application; nothing happens at import time."""
    instance = (test_config or {}).get("INSTANCE_PATH") or os.environ.get("MUSTER_INSTANCE_PATH")
    app = Flask(__name__, instance_path=instance, instance_relative_config=True)
    from server import config

    config.load(app, test_config)

    from server import api, cli, db, errors, logs, ratelimit, setup
    from server.reconcile import backlog

    logs.init_app(app)
    db.init_app(app)
    errors.init_app(app)
    ratelimit.init_app(app)
    backlog.init_app(app)
    setup.init_app(app)
    api.init_app(app)
    cli.init_app(app)
    return app
