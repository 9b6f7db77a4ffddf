"""Figure 7: the nightly report (100,000 people, 1,000,000 events, every format, < 10 s).

The nightly report is not built yet (no ``server/reports``), so this prints a ``skipped``
line saying so; once it exists, this is where it is timed.

Usage: python -m bench.report [--quick|--full]
"""

from __future__ import annotations

from bench.common import REPO, size_arg, skipped


def main(argv: list[str] | None = None) -> int:
    size, _ = size_arg(argv)
    if not (REPO / "server" / "reports").exists():
        skipped(
            "report.nightly",
            "server/reports does not exist yet; nothing to time",
            size=size,
            target="< 10 s for 100,000 people, 1,000,000 events",
        )
        return 0
    skipped(
        "report.nightly",
        "server/reports exists but no benchmark is written against its API yet; add it here",
        size=size,
    )
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
