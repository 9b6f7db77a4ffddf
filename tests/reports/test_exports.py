# ruff: noqa: F811 - ``seeded`` is the console's fixture, imported here and used as an argument
"""Partner exports on SQLite and PostgreSQL: roster CSV/XLSX with exact rows, PFIF 1.4 valid
against its schema, no document numbers or phones anywhere, coordinators only."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from server.reports.exports import PARTNER_SCHEMA, SCHEMAS_DIR
from tests.conftest import login
from tests.console.conftest import seeded  # noqa: F401 - the console's scenario, reused
from tests.console.scenario import PEOPLE

etree = pytest.importorskip("lxml.etree")  # dev dependency: lxml
NS = {"pfif": "http://zesty.ca/pfif/1.4"}
HEADER = [
    "id",
    "external_id",
    "full_name",
    "group_id",
    "birth_date",
    "source",
    "state",
    "reason",
    "last_checkpoint",
    "last_seen_ms",
]
#: name -> (group, birth date, source, state, reason, last checkpoint index)
EXPECTED = {
    "Amira Haddad": ("1", "", "roster", "not_seen", "not seen at any checkpoint", None),
    "Anna Bauer": ("1", "", "roster", "checked_in", "seen at checkpoint {}", 1),
    "Ivan Petrenko": ("1", "", "roster", "checked_in", "seen at checkpoint {}", 1),
    "John Smith": ("1", "", "roster", "checked_in", "seen at checkpoint {}", 1),
    "Kenji Sato": ("1", "", "roster", "checked_in", "seen at checkpoint {}", 0),
    "Maria Lopez": ("1", "", "roster", "checked_in", "seen at checkpoint {}", 0),
    "Zhang Wei": ("", "2001-05-04", "walk-in", "checked_in", "seen at checkpoint {}", 1),
    "Олена Коваленко": ("1", "1999-01-02", "roster", "checked_in", "seen at checkpoint {}", 1),
    "张伟": ("1", "2001-05-04", "roster", "checked_in", "seen at checkpoint {}", 1),
}
#: Every document number and phone of the scenario, as typed (the walk-in's too).
SECRETS = [p[2] for p in PEOPLE] + [p[3] for p in PEOPLE if p[3]] + ["E12 345 67"]


def _get(client: FlaskClient, seeded: dict[str, Any], name: str, role: str) -> Any:
    user = {"coordinator": "coord", "viewer": "viewer", "admin": "boss"}[role]
    headers = login(client, user, seeded["staff"][role])
    resp = client.get(f"/api/v1/operations/{seeded['op']}/exports/{name}", headers=headers)
    resp.get_data()  # consume the stream so its context closes before the next request
    return resp


def _expected_rows(seeded: dict[str, Any]) -> list[list[str]]:
    ids = {**seeded["ids"], "Zhang Wei": seeded["walkin"]}
    rows = []
    for name in sorted(EXPECTED, key=lambda n: (n.casefold(), n)):
        group, born, source, state, reason, cp = EXPECTED[name]
        cp_id = "" if cp is None else str(seeded["checkpoints"][cp])
        rows.append([ids[name], "", name, group, born, source, state, reason.format(cp_id), cp_id])
    return rows


def _secrets_absent(blob: str) -> None:
    for secret in SECRETS:
        assert secret not in blob
        assert secret.replace(" ", "") not in blob


def test_roster_csv_export_has_exact_rows_and_no_documents_or_phones(
    client: FlaskClient, seeded: dict[str, Any]
) -> None:
    resp = _get(client, seeded, "roster.csv", "coordinator")
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert resp.headers["Content-Disposition"] == (
        f"attachment; filename=muster-{seeded['op']}-roster.csv"
    )
    text = resp.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text[1:])))
    assert rows[0] == HEADER
    assert len(rows) == 10
    # last_seen_ms is the device's (fake) clock: present exactly when a checkpoint is.
    assert [r[:9] for r in rows[1:]] == sorted(_expected_rows(seeded), key=lambda r: r[2])
    assert [bool(r[9]) for r in rows[1:]] == [bool(r[8]) for r in rows[1:]]
    _secrets_absent(text)


def test_roster_xlsx_export_has_the_same_rows_as_the_csv_and_no_documents_or_phones(
    client: FlaskClient, seeded: dict[str, Any]
) -> None:
    from openpyxl import load_workbook

    csv_rows = list(
        csv.reader(
            io.StringIO(_get(client, seeded, "roster.csv", "admin").get_data(as_text=True)[1:])
        )
    )
    resp = _get(client, seeded, "roster.xlsx", "admin")
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    book = load_workbook(io.BytesIO(resp.get_data()), read_only=True)
    sheet = book["roster"]
    cells = [
        ["" if v is None else str(v) for v in row] for row in sheet.iter_rows(values_only=True)
    ]
    assert cells == csv_rows
    with zipfile.ZipFile(io.BytesIO(resp.get_data())) as z:
        _secrets_absent("".join(z.read(n).decode("utf-8") for n in z.namelist()))


def test_pfif_export_is_valid_pfif_1_4_with_a_note_per_event(
    client: FlaskClient, seeded: dict[str, Any]
) -> None:
    resp = _get(client, seeded, "pfif.xml", "coordinator")
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.mimetype == "application/pfif+xml"
    body = resp.get_data()
    doc = etree.fromstring(body)
    schema = etree.XMLSchema(etree.parse(str(SCHEMAS_DIR / "pfif-1.4.xsd")))
    schema.assertValid(doc)
    people = doc.findall("pfif:person", NS)
    assert len(people) == 9
    by_name = {p.findtext("pfif:full_name", namespaces=NS): p for p in people}
    assert set(by_name) == set(EXPECTED)
    # 7 boarded + 6 crossed + 1 walk-in + Maria back at the station = 15 events with a person.
    notes = doc.findall(".//pfif:note", NS)
    assert len(notes) == 15
    assert {n.findtext("pfif:status", namespaces=NS) for n in notes} == {"believed_alive"}
    zhang = by_name["张伟"]
    assert zhang.findtext("pfif:person_record_id", namespaces=NS) == (
        f"muster.example/person.{seeded['ids']['张伟']}"
    )
    assert zhang.findtext("pfif:alternate_names", namespaces=NS) == "Zhang Wei"
    assert zhang.findtext("pfif:date_of_birth", namespaces=NS) == "2001-05-04"
    assert [
        n.findtext("pfif:last_known_location", namespaces=NS)
        for n in zhang.findall("pfif:note", NS)
    ] == ["Kharkiv station", "Medyka crossing"]
    maria = [
        n.findtext("pfif:text", namespaces=NS)
        for n in by_name["Maria Lopez"].findall("pfif:note", NS)
    ]
    assert maria == [
        "Check-in at Kharkiv station: boarded (search).",
        "Check-in at Medyka crossing: crossed (search).",
        "Check-in at Kharkiv station: present (search).",
    ]
    assert by_name["Amira Haddad"].findall("pfif:note", NS) == []
    walkin = by_name["Zhang Wei"].find("pfif:note", NS)
    assert (
        walkin.findtext("pfif:text", namespaces=NS) == "Registered as a walk-in at Medyka crossing."
    )
    _secrets_absent(body.decode("utf-8"))


def test_every_export_is_refused_to_a_viewer_and_reconcile_csv_keeps_its_columns(
    client: FlaskClient, seeded: dict[str, Any]
) -> None:
    for name in ("roster.csv", "roster.xlsx", "pfif.xml"):
        resp = _get(client, seeded, name, "viewer")
        assert resp.status_code == 403, name
        assert resp.get_json()["error"]["code"] == "forbidden"
    assert client.get(f"/api/v1/operations/{seeded['op']}/exports/pfif.xml").status_code == 401
    # The staff roster CSV shares the table code; coordinators still get documents there.
    headers = login(client, "coord", seeded["staff"]["coordinator"])
    text = client.get(f"/api/v1/operations/{seeded['op']}/roster.csv", headers=headers).get_data(
        as_text=True
    )
    assert text.splitlines()[0] == (
        "\ufeffid,external_id,full_name,group_id,birth_date,source,document_number,phone,"
        "state,reason,last_checkpoint,last_seen_ms"
    )
    assert "E1234567" in text
    assert "document_number" not in PARTNER_SCHEMA.fields and "phone" not in PARTNER_SCHEMA.fields


def test_cli_export_writes_the_same_files_as_the_api(
    app: Flask, client: FlaskClient, runner: FlaskCliRunner, seeded: dict[str, Any], tmp_path: Path
) -> None:
    app.config["PFIF_DOMAIN"] = "embassy.example"
    for fmt, name in (("csv", "roster.csv"), ("pfif", "pfif.xml")):
        out = tmp_path / name
        result = runner.invoke(
            args=[
                "report",
                "export",
                "--operation",
                str(seeded["op"]),
                "--format",
                fmt,
                "--out",
                str(out),
                "--json",
            ]
        )
        assert result.exit_code == 0, result.output
        data = json.loads(result.output)
        assert data["bytes"] == out.stat().st_size
        assert out.read_bytes() == _get(client, seeded, name, "coordinator").get_data()
    assert "<pfif:person_record_id>embassy.example/person." in (tmp_path / "pfif.xml").read_text()
    xlsx = tmp_path / "roster.xlsx"
    result = runner.invoke(
        args=[
            "report",
            "export",
            "--operation",
            "Kharkiv students",
            "--format",
            "xlsx",
            "--out",
            str(xlsx),
        ]
    )
    assert result.exit_code == 0, result.output
    assert zipfile.is_zipfile(xlsx)
    bad = runner.invoke(
        args=["report", "export", "--operation", "1", "--format", "pdf", "--out", str(xlsx)]
    )
    assert bad.exit_code == 2
