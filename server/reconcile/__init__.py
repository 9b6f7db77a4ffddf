"""Reconciliation: per-person state, discrepancy queues and staff resolutions.

``derive`` is the pure core; ``store`` loads snapshots and writes derived state; ``queues``
reads the discrepancy queues; ``resolve`` applies staff resolutions.
"""

from __future__ import annotations

from server.reconcile.store import load_snapshot, on_events, rebuild, recompute

__all__ = ["load_snapshot", "on_events", "rebuild", "recompute"]
