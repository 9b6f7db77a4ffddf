"""Nightly headcount reports: frozen per-night snapshots in PDF, HTML, CSV and JSON, signed.

See docs/reports.md. ``service`` makes and stores reports; ``content`` computes what they say;
``sections``, ``pdf``, ``htmlpage`` and ``tables`` write them; ``integrity`` seals and verifies
folders; ``nights`` knows the cut-offs; ``scheduler`` runs them inside ``muster-server serve``.
"""

from __future__ import annotations

from server.reports import scheduler

__all__ = ["scheduler"]
