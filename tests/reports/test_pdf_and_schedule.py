"""The printed report is readable (pdftoppm, pdftotext); bad input is refused; the scheduler
catches up missed nights and retention prunes old ones."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from server.db import database
from server.models import Operation
from server.reports import scheduler, service
from tests.reports.helpers import add_people, local, make_operation, naive_utc
from tests.reports.script import day_one, day_two


def test_pdf_renders_to_readable_pages_with_chinese_and_latin_text(
    app: Flask,
    runner: Any,
    evacuation: dict[str, Any],
    tmp_path: Path,
) -> None:
    if shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils (pdftoppm, pdftotext) is not installed")
    day_one(app, evacuation)
    day_two(app, evacuation)
    out = runner.invoke(args=["report", "nightly", "--operation", str(evacuation["id"]), "--json"])
    assert out.exit_code == 0, out.output
    folder = Path(json.loads(out.output)["reports"][-1]["folder"])
    pdf = folder / "report.pdf"
    text = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "Nightly headcount report / 每晚人数报告" in text
    assert "张伟" not in text  # arrived: names only in the two lists
    assert "Traveller 3" in text and "Student 9" in text  # not accounted for: absent, not seen
    assert "Student 2" in text  # needs assistance
    assert "Student 5" not in text  # accounted for, no flag: counts only
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 1
    from PIL import Image

    for page in pages:
        with Image.open(page) as img:
            lo, hi = img.convert("L").getextrema()
            assert (img.size[0], lo < 100, hi) == (414, True, 255)  # A4 at 50 dpi, inked


def test_reportlab_formats_numbers_with_its_c_accelerator() -> None:
    # A quarter of the nightly PDF's time was ReportLab's pure-Python fallback for this.
    from reportlab.lib import rl_accel

    assert rl_accel.fp_str.__module__ == "_rl_accel"
    assert rl_accel.fp_str(1.5, 0.25, 100) == "1.5 .25 100"


def test_bad_input_gives_a_clear_message_and_a_non_zero_exit(
    app: Flask, client: FlaskClient, admin_headers: dict[str, str], runner: Any, tmp_path: Path
) -> None:
    first = dt.date.today() - dt.timedelta(days=3)
    op = make_operation(client, admin_headers, first)
    ref = str(op["id"])

    def run(*args: str) -> Any:
        return runner.invoke(args=["report", *args])

    unknown = run("nightly", "--operation", "999", "--date", first.isoformat())
    assert (unknown.exit_code, "No such operation." in unknown.output) == (1, True)
    early = run("nightly", "--operation", ref, "--date", (first - dt.timedelta(days=1)).isoformat())
    assert early.exit_code == 1 and "is before the operation starts" in early.output
    future = (dt.date.today() + dt.timedelta(days=2)).isoformat()
    late = run("nightly", "--operation", ref, "--date", future)
    assert late.exit_code == 1 and "has not passed yet" in late.output
    garbled = run("nightly", "--operation", ref, "--date", "yesterday")
    assert garbled.exit_code == 1 and "YYYY-MM-DD" in garbled.output
    made = run("nightly", "--operation", ref, "--date", first.isoformat(), "--json")
    folder = Path(json.loads(made.output)["reports"][0]["folder"])
    sig = folder / "SIGNATURE"
    sig.write_text(sig.read_text().replace("signature: ", "signature: AAAA"))
    bad = run("verify", str(folder))
    assert bad.exit_code == 1 and "signature: invalid" in bad.output
    assert "changed: SIGNATURE" in bad.output
    nowhere = run("verify", str(tmp_path / "nope"))
    assert nowhere.exit_code == 1 and "No such report folder" in nowhere.output
    wrong_key = run("verify", str(folder), "--public-key", "not-a-key")
    assert wrong_key.exit_code == 1 and "not base64" in wrong_key.output


def test_scheduler_makes_missed_nights_and_retention_prunes_old_ones(
    app: Flask, client: FlaskClient, admin_headers: dict[str, str]
) -> None:
    first = dt.date.today() - dt.timedelta(days=5)
    op = make_operation(client, admin_headers, first)
    add_people(app, op["id"], op["groups"][0], ["Student 1", "Student 2"], op["start"])
    with app.app_context(), database.connection_context():
        operation = Operation.get_by_id(op["id"])
        # Three nights are due at 22:00 on the third day: all made at the first run.
        at = naive_utc(local(first + dt.timedelta(days=2), 22))
        made = service.catch_up(now=at)
        assert [r.date for r in made] == [
            (first + dt.timedelta(days=i)).isoformat() for i in range(3)
        ]
        assert service.catch_up(now=at) == []
        app.config["REPORT_RETENTION_DAYS"] = 1
        removed = service.prune(now=at)
        assert removed == [{"operation": operation.id, "date": first.isoformat()}]
        assert service.stored_nights(operation.id) == [
            first + dt.timedelta(days=1),
            first + dt.timedelta(days=2),
        ]
        app.config["REPORT_RETENTION_DAYS"] = 0
    # The embedded scheduler's run catches up to today's due night.
    assert scheduler.run_once(app) == len(
        [d for d in _due(app, op["id"]) if d > first + dt.timedelta(days=2)]
    )


def _due(app: Flask, op_id: int) -> list[dt.date]:
    from server.models import utcnow
    from server.reports import nights

    with app.app_context(), database.connection_context():
        return nights.due_nights(Operation.get_by_id(op_id), utcnow())
