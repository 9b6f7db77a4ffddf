"""Settings: defaults, then the instance ``config.py``, then ``MUSTER_*`` environment variables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask

DEFAULTS: dict[str, Any] = {
    # Requests larger than this are refused with 413 before they are read.
    "MAX_CONTENT_LENGTH": 8 * 1024 * 1024,
    # Roster files may be large; they are streamed, but bounded all the same.
    "ROSTER_MAX_BYTES": 64 * 1024 * 1024,
    # Push batches: the server refuses larger ones with 413 and the device halves.
    "PUSH_MAX_RECORDS": 2000,
    "PUSH_MAX_BYTES": 4 * 1024 * 1024,
    "PULL_PAGE_SIZE": 2000,
    # Staff API tokens.
    "TOKEN_TTL_HOURS": 12,
    # One-time enrolment codes.
    "ENROLMENT_TTL_MINUTES": 30,
    # Capture times further than this from the skew-corrected server clock are flagged.
    "CLOCK_SKEW_BOUND_SECONDS": 6 * 3600,
    # Token-bucket rate limits ("N/second|minute|hour"; empty disables): staff log-in per client
    # address and username, enrolment per client address, sync requests per device.
    "RATE_LIMIT_LOGIN": "10/minute",
    "RATE_LIMIT_ENROL": "120/minute",
    "RATE_LIMIT_SYNC": "600/minute",
    "LOG_LEVEL": "INFO",
    # Days after an operation closes until its personal data is expired (`muster-server purge`).
    "RETENTION_DAYS": 90,
    # Let a scraper on this host read /metrics without a token (not through a proxy).
    "METRICS_ALLOW_LOOPBACK": True,
    # Nightly reports: folder (default instance/reports), days kept (0: forever), devices silent
    # longer than this many hours before the cut-off are listed, and the embedded scheduler.
    "REPORTS_DIR": "",
    "REPORT_RETENTION_DAYS": 90,
    "REPORT_SILENT_HOURS": 6,
    "REPORT_SCHEDULER": True,
    "REPORT_CHECK_SECONDS": 60,
    # Processes a report may use: None = 2 when a core is idle (CPU times over 0.2 s), else 1
    # (a forked second process derives half of the people and renders the PDF; same bytes).
    "REPORT_PROCESSES": None,
    # Build the conflicts, headcounts and duplicates queues of open operations when `serve`
    # starts (a background thread), so the first staff request does not pay for it.
    "QUEUE_WARMUP": True,
    # When derived state (summaries, queues) takes in pushed events: "behind" answers a push
    # once its events are durable and folds them in just after (a deriver process started by
    # `serve`, or the next staff request, first); "inline" derives before answering.
    # Staff see every acknowledged event either way (server.reconcile.backlog).
    "DERIVE": "behind",
    # `serve` starts the deriver process (`muster-server derive`) beside itself when "behind".
    "DERIVER_PROCESS": True,
    # MB of memory the deriver may gain over its size at start before it starts afresh (same
    # process id, between rounds): what folding in grows stays with a process otherwise.
    "DERIVER_MEMORY_MB": 64,
}


def load(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Fill ``app.config`` from defaults, the instance file, the environment and ``test_config``."""
    app.config.from_mapping(DEFAULTS)
    app.config["KEYS_DIR"] = os.path.join(app.instance_path, "keys")
    app.config["DATABASE_URL"] = "sqlite:///" + os.path.join(app.instance_path, "muster.db")
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
        # MUSTER_DATABASE_URL=..., MUSTER_TOKEN_TTL_HOURS=24 (values parsed as JSON when possible)
        app.config.from_prefixed_env("MUSTER")
        if os.environ.get("DATABASE_URL"):
            app.config["DATABASE_URL"] = os.environ["DATABASE_URL"]
    else:
        app.config.from_mapping(test_config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True, mode=0o700)
