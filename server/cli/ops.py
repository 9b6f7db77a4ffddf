"""``backup``, ``restore``, ``migrate-db`` and ``purge``: running an instance for real."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from server.cli.output import command_errors, emit, json_option, require_initialised
from server.db import database


@click.command("backup")
@click.option(
    "--to",
    "to",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Backup file (default: instance/backups/muster-<UTC time>.db or .dump).",
)
@json_option
@with_appcontext
@command_errors
def backup_command(to: Path | None, as_json: bool) -> None:
    """Write a consistent backup of the database while the server keeps running.

    SQLite: the online backup API (the file is a SQLite database). PostgreSQL: pg_dump's
    custom format (needs the pg_dump binary). Keys are not included: back up instance/keys
    separately.

    Example: muster-server backup --to /var/backups/muster/muster-2022-03-02.db
    """
    from server.ops import backup

    require_initialised()
    path = to or backup.default_path(current_app.instance_path, database.obj)
    written = backup.backup(database.obj, current_app.config["DATABASE_URL"], path)
    data = {"path": str(written), "bytes": written.stat().st_size}
    emit(data, as_json, lambda d: f"Backup written to {d['path']} ({d['bytes']} bytes).")


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite a database that already holds data.")
@json_option
@with_appcontext
@command_errors
def restore_command(path: Path, force: bool, as_json: bool) -> None:
    """Replace the database with a backup made by 'muster-server backup'.

    Stop every server process first. Refuses to overwrite a database holding data unless
    --force is given.

    Example: muster-server restore /var/backups/muster/muster-2022-03-02.db --force
    """
    from server import migrations
    from server.ops import backup

    backup.restore(database.obj, current_app.config["DATABASE_URL"], path, force=force)
    data = {
        "restored_from": str(path),
        "schema_version": migrations.schema_version(database.obj),
    }
    emit(
        data,
        as_json,
        lambda d: (
            f"Restored from {d['restored_from']} (schema version {d['schema_version']}). "
            "Start the server: pending migrations apply at start."
        ),
    )


@click.command("migrate-db")
@click.option("--to", "target_url", required=True, help="URL of an empty target database.")
@click.option("--batch", default=1000, show_default=True, type=int, help="Rows per insert.")
@json_option
@with_appcontext
@command_errors
def migrate_db_command(target_url: str, batch: int, as_json: bool) -> None:
    """Copy the whole database to an empty one (SQLite to PostgreSQL) and verify it.

    Copies every table in foreign-key order, then compares row counts and checksums. Stop
    the server first so nothing changes during the copy; afterwards point
    MUSTER_DATABASE_URL at the target.

    Example: muster-server migrate-db --to postgresql://muster@db.internal/muster
    """
    from server.ops.migrate_db import copy_database

    require_initialised()

    def progress(table: str, done: int, total: int) -> None:
        if not as_json:
            click.echo(f"  {table}: {done}/{total}", err=True)

    report = copy_database(database.obj, target_url, batch=batch, progress=progress)
    emit(
        report.as_dict(),
        as_json,
        lambda d: "\n".join(
            [f"Copied {d['source']} to {d['target']}; every table verified:"]
            + [
                f"  {t}: {v['rows']} rows, sha256 {v['checksum'][:16]}"
                for t, v in d["tables"].items()
            ]
        ),
    )


@click.command("purge")
@click.option("--dry-run", is_flag=True, help="Only show which operations are due and when.")
@click.option(
    "--now",
    "now_text",
    default=None,
    help="Pretend it is this UTC time (ISO 8601), to check the schedule.",
)
@json_option
@with_appcontext
@command_errors
def purge_command(dry_run: bool, now_text: str | None, as_json: bool) -> None:
    """Expire personal data of closed operations past RETENTION_DAYS (PFIF-style placeholders).

    Counts, events (kind, person id, checkpoint, times) and reports stay; names, documents,
    phones, birth dates, walk-in details and notes go. Safe to run daily.

    Example: muster-server purge --dry-run
    """
    from server.ops import purge

    require_initialised()
    days = int(current_app.config["RETENTION_DAYS"])
    now = dt.datetime.fromisoformat(now_text).replace(tzinfo=None) if now_text else None
    if dry_run:
        data = {"retention_days": days, "operations": purge.schedule(days)}
        emit(
            data,
            as_json,
            lambda d: (
                "\n".join(
                    f"operation {o['operation']}: closed {o['closed_at']}, "
                    f"purge due {o['purge_due_at']}" + (" (done)" if o["purged"] else "")
                    for o in d["operations"]
                )
                or "No closed operations."
            ),
        )
        return
    done = [r.as_dict() for r in purge.purge_due(days, now=now, actor="cli")]
    emit(
        {"retention_days": days, "purged": done},
        as_json,
        lambda d: (
            "\n".join(
                f"operation {r['operation']}: {r['people']} people, {r['events']} events expired"
                for r in d["purged"]
            )
            or "Nothing is due."
        ),
    )


#: Registered by ``server.cli.init_app``.
COMMANDS = (backup_command, restore_command, migrate_db_command, purge_command)
