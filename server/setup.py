"""Bring an instance up to date: schema migrations, key material, the first administrator."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from server import migrations
from server.crypto import keyring
from server.db import database

log = logging.getLogger("muster.setup")


def bootstrap(app: Flask) -> dict[str, Any]:
    """Apply pending migrations, create missing keys and the first admin; report what was done."""
    from server.staff.service import ensure_first_admin

    # Under one lock, so processes starting together create one admin and one set of keys.
    with database.connection_context(), migrations.exclusive(database.obj):
        # Keys first: migrations that seal existing personal data need the data key.
        ring, keys_created = keyring.ensure(app.config["KEYS_DIR"])
        applied = migrations.apply_pending(database.obj)
        first = ensure_first_admin()
        version = migrations.schema_version(database.obj)
    app.extensions["muster.keyring"] = ring
    app.secret_key = ring.flask_secret
    log.info(
        "instance ready",
        extra={
            "migrations_applied": len(applied),
            "schema_version": version,
            "keys_created": keys_created,
        },
    )
    return {
        "migrations_applied": applied,
        "schema_version": version,
        "keys_created": keys_created,
        "first_admin": None
        if first is None
        else {"username": first[0].username, "password": first[1]},
    }


def get_keyring() -> keyring.Keyring:
    """The application's keyring; loaded lazily, and again after ``muster-server keys rotate``."""
    ring = current_app.extensions.get("muster.keyring")
    if ring is None or ring.is_stale():
        ring, _ = keyring.ensure(current_app.config["KEYS_DIR"])
        current_app.extensions["muster.keyring"] = ring
        current_app.secret_key = ring.flask_secret
    return ring


def init_app(app: Flask) -> None:
    """Load the keyring of an initialised instance, so personal-data columns can be read."""
    app.extensions.setdefault("muster.keyring", None)
    keys_dir = Path(app.config["KEYS_DIR"])
    if (keys_dir / "current").exists():
        ring, _ = keyring.ensure(keys_dir)
        app.extensions["muster.keyring"] = ring
        app.secret_key = ring.flask_secret
