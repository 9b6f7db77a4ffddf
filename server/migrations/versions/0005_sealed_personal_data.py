"""Seal document numbers, phone numbers and event bodies at rest; hash document keys.

Widens the person columns that now hold ciphertext (PostgreSQL enforces VARCHAR lengths), then
re-writes any rows stored in clear by earlier versions through ``server.crypto.fields``, whose
data key ``setup.bootstrap`` loads before migrating.
"""

from peewee import TextField

from server.crypto.fields import blind_index, seal

_BATCH = 1000


def _reseal(db, table, key, columns, hashed=()):
    cols = ", ".join([key, *columns])
    last = None
    while True:
        where = "" if last is None else f" WHERE {key} > {db.param}"
        rows = db.execute_sql(
            f'SELECT {cols} FROM "{table}"{where} ORDER BY {key} LIMIT {_BATCH}',
            () if last is None else (last,),
        ).fetchall()
        if not rows:
            return
        for row in rows:
            values, changed = [], False
            for name, value in zip(columns, row[1:], strict=True):
                if isinstance(value, str) and value and not value.startswith(("s1:", "b1:")):
                    value = blind_index(value) if name in hashed else seal(value)
                    changed = True
                values.append(value)
            if changed:
                sets = ", ".join(f"{c} = {db.param}" for c in columns)
                db.execute_sql(
                    f'UPDATE "{table}" SET {sets} WHERE {key} = {db.param}', (*values, row[0])
                )
        last = rows[-1][0]


def up(migrator, db):
    if migrator.__class__.__name__.startswith("Postgres"):
        migrator.migrate(
            migrator.alter_column_type("person", "document_number", TextField(default="")),
            migrator.alter_column_type("person", "phone", TextField(default="")),
        )
    _reseal(
        db, "person", "id", ("document_number", "phone", "document_key"), hashed=("document_key",)
    )
    _reseal(db, "event", "id", ("body",))
    _reseal(db, "quarantined_record", "id", ("body",))
