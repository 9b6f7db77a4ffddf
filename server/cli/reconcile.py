"""``muster-server rebuild``: recompute derived reconciliation state from events alone."""

from __future__ import annotations

from typing import Any

import click
from flask.cli import with_appcontext

from server.cli.output import command_errors, emit, json_option, require_initialised
from server.db import write_transaction
from server.models import Operation
from server.reconcile.store import rebuild


@click.command("rebuild")
@click.option(
    "--operation",
    "operation_ref",
    default=None,
    help="Operation id or name (default: every operation).",
)
@json_option
@with_appcontext
@command_errors
def rebuild_command(operation_ref: str | None, as_json: bool) -> None:
    """Recompute person states and merge links from events and resolutions alone.

    Example: muster-server rebuild --operation "Kharkiv students"
    """
    from server.operations.service import get_operation

    require_initialised()
    ops = (
        [get_operation(operation_ref)]
        if operation_ref
        else list(Operation.select().order_by(Operation.id))
    )
    results: list[dict[str, Any]] = []
    for op in ops:
        click.echo(f"rebuilding operation {op.id}...", err=True)
        with write_transaction():
            counts = rebuild(op.id)
        results.append({"operation": op.id, **counts})
    emit(
        {"rebuilt": results},
        as_json,
        lambda d: "\n".join(
            f"operation {r['operation']}: {r['people']} people, {r['events']} events, "
            f"{r['resolutions']} resolutions"
            for r in d["rebuilt"]
        ),
    )
