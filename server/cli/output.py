"""Output for CLI commands: human text by default, one JSON document with ``--json``."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any

import click
from marshmallow import ValidationError

from server.db import database
from server.errors import MusterError, error_body
from sync.protocol import ErrorCode

json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")


def emit(data: Any, as_json: bool, human: Callable[[Any], str] | None = None) -> None:
    """Print ``data`` as JSON, or as the text ``human`` makes of it."""
    if as_json or human is None:
        click.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False))
    else:
        click.echo(human(data))


def command_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn Muster errors into a clear message (or the JSON error body) and exit status 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            database.connect(reuse_if_open=True)
            return func(*args, **kwargs)
        except ValidationError as exc:
            _fail(
                ErrorCode.VALIDATION_FAILED,
                "The input did not validate.",
                {"fields": exc.messages},
                bool(kwargs.get("as_json")),
            )
        except MusterError as exc:
            _fail(exc.code, exc.message, exc.details, bool(kwargs.get("as_json")))

    return wrapper


def _fail(code: ErrorCode, message: str, details: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(error_body(code, message, details), ensure_ascii=False))
    else:
        click.echo(f"Error ({code}): {message}", err=True)
        if details:
            click.echo(json.dumps(details, indent=2, ensure_ascii=False), err=True)
    sys.exit(1)


def require_initialised() -> None:
    """Refuse to work on a database that ``muster-server init`` has not set up."""
    from server import migrations

    if migrations.schema_version(database.obj) == 0:
        raise click.ClickException("This instance is not set up: run 'muster-server init' first.")
