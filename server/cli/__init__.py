"""``muster-server``: administer and serve a Muster instance (a Flask CLI group)."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import FlaskGroup

from server import create_app


def init_app(app: Flask) -> None:
    """Register every administration command on ``app.cli``."""
    from server.cli import (
        admin,
        devices,
        operations,
        ops,
        reconcile,
        reports,
        rosters,
        serve,
        staff,
    )

    for command in (
        serve.init_command,
        serve.serve_command,
        serve.derive_command,
        serve.status_command,
        operations.operation,
        operations.checkpoint,
        operations.group,
        rosters.roster,
        staff.staff,
        devices.device,
        admin.keys,
        reconcile.rebuild_command,
        reports.report,
        *ops.COMMANDS,
    ):
        app.cli.add_command(command)


@click.group(
    cls=FlaskGroup,
    create_app=lambda: create_app(),
    add_default_commands=False,
    add_version_option=False,
    set_debug_flag=False,
    load_dotenv=False,
)
def main() -> None:
    """Administer and serve Muster.

    \b
    First start:    muster-server serve
    Set up only:    muster-server init
    Add an operation:
        muster-server operation create "Kharkiv students" --timezone Europe/Kyiv

    Settings come from instance/config.py and MUSTER_* environment variables
    (for example MUSTER_DATABASE_URL=postgresql://user@host/db).
    """
