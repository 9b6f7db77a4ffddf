"""The derive backlog: events stored and acknowledged but not yet folded into derived state.

With ``DERIVE = "behind"`` ingest writes one row per operation and commit here (the ids of
the events it accepted, 16 bytes each), in the transaction that stores the events, instead of
deriving state before it answers; a deriver process (or any reader or writer of derived
state, first) folds them in and deletes the row in one transaction. A frozen copy of the
model as it was at this migration: never edit it.
"""

from peewee import BigAutoField, BlobField, IntegerField, Model


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class DeriveBacklog(Base):
        id = BigAutoField()
        # No foreign key: written on the hot path of ingest, and a row lives for milliseconds.
        operation = IntegerField(column_name="operation_id", index=True)
        events = BlobField()

        class Meta:
            table_name = "derive_backlog"

    db.create_tables([DeriveBacklog])
