"""gunicorn settings for Muster: set the instance up once in the master, then fork workers.

Use: ``gunicorn -c python:server.ops.gunicorn_conf -w 4 -b 127.0.0.1:8000 'server:create_app()'``.
Migrations run here, before any worker exists; on PostgreSQL they also hold an advisory lock,
so several hosts starting at once still migrate once.
"""

from __future__ import annotations

import json
import sys
from typing import Any

# Workers never share a database connection: each opens its own per request.
preload_app = False
# Pushes may take several seconds on a busy database; a device retries on a timeout anyway.
timeout = 60
graceful_timeout = 30
accesslog = None


def on_starting(server: Any) -> None:
    """Apply pending migrations, create missing keys and the first admin, once per start."""
    from server import create_app
    from server.setup import bootstrap

    result = bootstrap(create_app())
    admin = result.pop("first_admin")
    print(json.dumps({"event": "instance ready", **result}), file=sys.stderr, flush=True)
    if admin:
        # Shown once, like `muster-server init`; never logged anywhere else.
        print(
            f"First administrator created: {admin['username']} / {admin['password']}",
            file=sys.stderr,
            flush=True,
        )
