"""The JSON API and the pages: one blueprint per resource, thin views over the services."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    from server import console, fieldapp
    from server.api import (
        audit,
        devices,
        health,
        metrics,
        openapi,
        operations,
        people,
        reconcile,
        reports,
        rosters,
        staff,
        sync,
        util,
    )

    app.url_map.converters["int"] = util.IdConverter  # before any rule is added
    app.before_request(util.reject_unknown_query)
    app.register_blueprint(health.bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(openapi.bp)
    for module in (operations, people, staff, rosters, devices, sync, reconcile, audit, reports):
        app.register_blueprint(module.bp, url_prefix="/api/v1")
    app.register_blueprint(fieldapp.bp)
    console.init_app(app)
