"""``keys`` commands: show the public keys, rotate the session-opening key."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from server.cli.output import emit, json_option
from server.crypto import keyring


@click.group()
def keys() -> None:
    """Show and rotate the server's key material."""


@keys.command("show")
@json_option
@with_appcontext
def keys_show(as_json: bool) -> None:
    """Print the public keys (session-opening keys and the report signing key).

    Example: muster-server keys show --json
    """
    from sync.crypto import b64e

    ring, _ = keyring.ensure(current_app.config["KEYS_DIR"])
    assert ring.report_signing is not None
    data = {
        "current_kid": ring.current_kid,
        "session_keys": ring.public_keys(),
        "report_signing_public_key": b64e(ring.report_signing.public_key().public_bytes_raw()),
    }
    emit(
        data,
        as_json,
        lambda d: "\n".join(
            [f"current: {d['current_kid']}"]
            + [f"  {k['kid']}: {k['public_key']}" for k in d["session_keys"]]
            + [f"report signing: {d['report_signing_public_key']}"]
        ),
    )


@keys.command("rotate")
@json_option
@with_appcontext
def keys_rotate(as_json: bool) -> None:
    """Make a new current session key; devices get it on their next sync. Old keys stay.

    Running servers notice the new key at their next request; no restart is needed.

    Example: muster-server keys rotate
    """
    kid = keyring.rotate(current_app.config["KEYS_DIR"])
    emit({"current_kid": kid}, as_json, lambda d: f"New current key: {d['current_kid']}")
