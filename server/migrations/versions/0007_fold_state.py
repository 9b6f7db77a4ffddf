"""Keep each person's furthest observation with the derived state.

Ingest folds new events into a stored state instead of re-reading the person's whole history
(``server.reconcile.store``); route reversals are reported against the first observation at
the furthest route position, so the state keeps its id. Rows stored before this version have
none and are derived from their history once, the next time an event names them.
"""

from peewee import UUIDField


def up(migrator, db):
    migrator.migrate(migrator.add_column("person_state", "furthest", UUIDField(null=True)))
