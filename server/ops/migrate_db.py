"""Copy a whole instance's database to an empty PostgreSQL (or other) database and verify it.

The target gets the schema from the same numbered migrations, then every table in foreign-key
order, in batches; afterwards each table's row count and checksum must match the source's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import peewee
from peewee import AutoField, BigAutoField, Database, PostgresqlDatabase

from server import migrations
from server.db import backend_name, open_database
from server.errors import Conflict
from server.models import ALL_MODELS, BaseModel
from server.ops.checksums import table_digest

#: Called as progress(table, rows copied so far, rows in the table).
Progress = Callable[[str, int, int], None]


class MigrationRefused(Conflict):
    """The copy cannot start (non-empty target, outdated source) or did not verify."""


@dataclass
class CopyReport:
    """What was copied: per table, rows and the checksum both sides agree on."""

    source: str
    target: str
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "target": self.target, "tables": self.tables}


def copied_models() -> list[type[BaseModel]]:
    """Every table the application defines, parents before children (foreign-key order).

    ``ALL_MODELS`` plus any model a newer module declared without adding it there yet.
    """
    import server.models  # noqa: F401 - every model module registers its classes

    found: dict[str, type[BaseModel]] = {m._meta.table_name: m for m in ALL_MODELS}
    pending = list(BaseModel.__subclasses__())
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        if model.__module__.startswith("server.models"):
            found.setdefault(model._meta.table_name, model)
    # sort_models is missing from peewee's type stubs, hence the attribute lookup.
    return list(peewee.sort_models(list(found.values())))  # type: ignore[attr-defined]


def _row_counts(db: Database) -> dict[str, int]:
    """Rows in every table ``db`` has (known to the models or not)."""
    counts = {}
    for table in db.get_tables():
        counts[table] = int(db.execute_sql(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])
    return counts


def check_target_empty(target: Database) -> None:
    """Refuse a target that holds any row at all: a copy never merges into existing data."""
    filled = {t: n for t, n in _row_counts(target).items() if n}
    if filled:
        raise MigrationRefused(
            "The target database is not empty; copy only into a new, empty database.",
            details={"tables_with_rows": sorted(filled)},
        )


def check_source(source: Database) -> None:
    """The source must be fully migrated, and hold no table this code does not know to copy."""
    version, latest = migrations.schema_version(source), migrations.latest_version()
    if version != latest:
        raise MigrationRefused(
            f"The source is at schema version {version}, not {latest}: run 'muster-server init'.",
            details={"schema_version": version, "latest_version": latest},
        )
    known = {m._meta.table_name for m in copied_models()} | {"schema_migration"}
    unknown = {t: n for t, n in _row_counts(source).items() if n and t not in known}
    if unknown:
        raise MigrationRefused(
            "The source holds tables this version cannot copy; upgrade Muster first.",
            details={"tables": sorted(unknown)},
        )


def copy_database(
    source: Database, target_url: str, *, batch: int = 1000, progress: Progress | None = None
) -> CopyReport:
    """Copy every table from ``source`` to the empty database at ``target_url``; verify it."""
    target = open_database(target_url)
    target.connect(reuse_if_open=True)
    try:
        check_source(source)
        check_target_empty(target)
        migrations.apply_pending(target)
        report = CopyReport(backend_name(source), backend_name(target))
        for model in copied_models():
            total = model.select().bind(source).count()
            copied = 0
            pending: list[dict[str, Any]] = []
            query = model.select().order_by(*_order(model)).dicts().bind(source)
            for row in query.iterator():
                pending.append(row)
                if len(pending) >= batch:
                    copied += _insert(model, target, pending)
                    pending = []
                    if progress:
                        progress(model._meta.table_name, copied, total)
            copied += _insert(model, target, pending)
            if progress:
                progress(model._meta.table_name, copied, total)
            _advance_sequences(model, target)
        report.tables = verify(source, target)
        return report
    finally:
        target.close()


def verify(source: Database, target: Database) -> dict[str, dict[str, Any]]:
    """Compare each table's row count and checksum; raise if any differs."""
    tables: dict[str, dict[str, Any]] = {}
    mismatched = []
    for model in copied_models():
        name = model._meta.table_name
        (n_src, d_src), (n_dst, d_dst) = table_digest(model, source), table_digest(model, target)
        tables[name] = {"rows": n_src, "checksum": d_src}
        if (n_src, d_src) != (n_dst, d_dst):
            mismatched.append({"table": name, "source_rows": n_src, "target_rows": n_dst})
    if mismatched:
        raise MigrationRefused(
            "The copy does not match its source.", details={"tables": mismatched}
        )
    return tables


def _order(model: Any) -> list[Any]:
    pk = model._meta.primary_key
    return list(pk.field_names) if hasattr(pk, "field_names") else [pk]


def _insert(model: Any, target: Database, rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    with target.atomic():
        model.insert_many(rows).bind(target).as_rowcount().execute()
    return len(rows)


def _advance_sequences(model: Any, target: Database) -> None:
    """Ids were copied as they were: move PostgreSQL's id sequences past them."""
    pk = model._meta.primary_key
    if not isinstance(target, PostgresqlDatabase) or not isinstance(pk, AutoField | BigAutoField):
        return
    table, column = model._meta.table_name, pk.column_name
    target.execute_sql(
        f"SELECT setval(pg_get_serial_sequence('\"{table}\"', '{column}'), "
        f'COALESCE((SELECT MAX("{column}") FROM "{table}"), 0) + 1, false)'
    )
