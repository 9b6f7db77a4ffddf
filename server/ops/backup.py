"""Back up and restore the database: SQLite's online backup API, or pg_dump/pg_restore.

A backup is one file. SQLite backups are themselves SQLite databases (open them with any
SQLite tool); PostgreSQL backups are ``pg_dump --format=custom`` archives. Key material is
not in a backup: it lives in the instance ``keys/`` folder and is backed up separately
(docs/operations.md).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from peewee import Database, PostgresqlDatabase, SqliteDatabase

from server import migrations
from server.errors import Conflict, MusterError
from sync.protocol import ErrorCode


class BackupError(MusterError):
    """A backup or restore could not be made (missing tool, unreadable file, failed dump)."""

    code = ErrorCode.INTERNAL_ERROR


class RestoreRefused(Conflict):
    """Restoring would overwrite a database that holds data, and ``force`` was not given."""


def default_path(instance_path: str | os.PathLike[str], db: Database) -> Path:
    """``<instance>/backups/muster-<UTC stamp>.<db|dump>``: sortable, one per run."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    suffix = "db" if isinstance(db, SqliteDatabase) else "dump"
    return Path(instance_path) / "backups" / f"muster-{stamp}.{suffix}"


def backup(db: Database, url: str, to: Path) -> Path:
    """Write a consistent copy of the live database ``db`` (reached at ``url``) to ``to``."""
    to = Path(to)
    if to.exists():
        raise Conflict("A file already exists at the backup path; choose another path.")
    to.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if isinstance(db, SqliteDatabase):
        _sqlite_backup(db, to)
    elif isinstance(db, PostgresqlDatabase):
        _run(_pg_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={to}", _libpq(url))
    else:
        raise BackupError("Backups support SQLite and PostgreSQL only.")
    os.chmod(to, 0o600)
    return to


def restore(db: Database, url: str, source: Path, *, force: bool = False) -> None:
    """Replace the database ``db`` with the backup at ``source``; refuse data unless ``force``."""
    source = Path(source)
    if not source.is_file():
        raise BackupError("No backup file at that path.")
    if not force and migrations.schema_version(db) > 0 and _has_rows(db):
        raise RestoreRefused(
            "The database already holds data; restore with --force to overwrite it "
            "(stop the server processes first)."
        )
    if isinstance(db, SqliteDatabase):
        _sqlite_restore(db, source)
    elif isinstance(db, PostgresqlDatabase):
        db.close()
        _run(
            _pg_tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            f"--dbname={_libpq(url)}",
            str(source),
        )
        db.connect(reuse_if_open=True)
    else:
        raise BackupError("Backups support SQLite and PostgreSQL only.")


def _sqlite_backup(db: SqliteDatabase, to: Path) -> None:
    # The online backup API copies pages under a read transaction: writers may carry on.
    target = sqlite3.connect(to)
    try:
        db.connection().backup(target, pages=4096)
    finally:
        target.close()


def _sqlite_restore(db: SqliteDatabase, source: Path) -> None:
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        ok = src.execute("PRAGMA integrity_check").fetchone()[0]
        if ok != "ok":
            raise BackupError("The backup file is damaged (SQLite integrity check failed).")
        src.backup(db.connection())
    except sqlite3.DatabaseError as exc:
        raise BackupError("The file is not a SQLite backup of Muster.") from exc
    finally:
        src.close()


def _has_rows(db: Database) -> bool:
    for table in db.get_tables():
        if table == "schema_migration":
            continue
        if db.execute_sql(f'SELECT 1 FROM "{table}" LIMIT 1').fetchone():
            return True
    return False


def _pg_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(
            f"'{name}' was not found on PATH; install the PostgreSQL client tools "
            "(Debian: apt-get install postgresql-client) matching the server's major version."
        )
    return path


def _libpq(url: str) -> str:
    """peewee URLs and libpq agree on postgresql://; drop driver suffixes such as +pool."""
    scheme, sep, rest = url.partition("://")
    return "postgresql://" + rest if sep else url


def _run(*args: str) -> None:
    out = subprocess.run(args, capture_output=True, text=True, timeout=6 * 3600)
    if out.returncode != 0:
        # pg tools' messages name objects and options, not row contents.
        raise BackupError(
            f"{Path(args[0]).name} failed (exit {out.returncode}).",
            details={"stderr": out.stderr.strip()[-2000:]},
        )
