"""The JSON API: one blueprint per resource, thin views over the service modules."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from server.api import (
        audit,
        devices,
        health,
        openapi,
        operations,
        people,
        reconcile,
        staff,
        sync,
    )

    app.register_blueprint(health.bp)
    app.register_blueprint(operations.bp, url_prefix="/api/v1")
    app.register_blueprint(people.bp, url_prefix="/api/v1")
    app.register_blueprint(staff.bp, url_prefix="/api/v1")
    app.register_blueprint(
        __import__("server.api.rosters", fromlist=["bp"]).bp, url_prefix="/api/v1"
    )
    app.register_blueprint(devices.bp, url_prefix="/api/v1")
    app.register_blueprint(sync.bp, url_prefix="/api/v1")
    app.register_blueprint(reconcile.bp, url_prefix="/api/v1")
    app.register_blueprint(audit.bp, url_prefix="/api/v1")
    app.register_blueprint(openapi.bp)
    app.register_blueprint(__import__("server.fieldapp", fromlist=["bp"]).bp)
