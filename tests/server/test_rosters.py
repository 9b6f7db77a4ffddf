"""Roster import: formats, encodings, headers, validation, all-or-nothing, matching, API."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from server.crypto.fields import blind_index
from server.db import database
from server.models import AuditEntry, Change, Person, PersonState
from tests.server.roster_fixtures import CHINESE_HEADER, roster_rows, write_csv


@contextmanager
def db(app: Flask) -> Iterator[None]:
    with app.app_context():
        database.connect(reuse_if_open=True)
        yield


def people_count(app: Flask) -> int:
    with db(app):
        return int(Person.select().count())


def run_import(runner: FlaskCliRunner, path: Path, op: dict[str, Any], *extra: str) -> Any:
    return runner.invoke(args=["roster", "import", str(path), "--operation", str(op["id"]), *extra])


def import_json(
    runner: FlaskCliRunner, path: Path, op: dict[str, Any], *extra: str, code: int = 0
) -> dict[str, Any]:
    res = run_import(runner, path, op, "--json", *extra)
    assert res.exit_code == code, res.output
    return json.loads(res.stdout)


def thousand_rows_with_three_bad() -> list[list[str]]:
    rows = roster_rows(1000)
    rows[100][1] = ""  # no name: line 102
    rows[500][4] = "2001-02-30"  # no such date: line 502
    rows[900][5] = "e-1000 0010"  # the document of row 10 (line 12), typed differently
    return rows


def fix(rows: list[list[str]]) -> list[list[str]]:
    rows[100][1] = "李娜"
    rows[500][4] = "2001-02-28"
    rows[900][5] = "E20000900"
    return rows


def personal_values(rows: list[list[str]]) -> set[str]:
    """Names, pinyin, document numbers and phones of a fixture, to look for in outputs."""
    return {v for r in rows for v in (r[1], r[2], r[5], r[6]) if v}


def assert_no_personal_data(text: str, rows: list[list[str]]) -> None:
    leaked = [v for v in personal_values(rows) if v in text]
    assert leaked == []


def test_a_roster_with_three_bad_rows_is_refused_then_imported_once_via_the_cli(
    app: Flask, runner: FlaskCliRunner, operation: dict[str, Any], tmp_path: Path
) -> None:
    rows = thousand_rows_with_three_bad()
    path = write_csv(tmp_path / "roster.csv", CHINESE_HEADER, rows)
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")

    res = run_import(runner, path, operation)
    assert res.exit_code == 1
    assert "line 102, column 姓名: Missing data for required field." in res.output
    assert "line 502, column 出生日期: Not a date" in res.output
    assert "line 902, column 护照号码: Same document number as line 12." in res.output
    assert "3 of 1000 rows are invalid; nothing was imported." in res.output
    assert_no_personal_data(res.output, rows)
    refused = import_json(runner, path, operation, code=1)
    assert refused["error"]["code"] == "roster_invalid"
    assert [e["line"] for e in refused["error"]["details"]["errors"]] == [102, 502, 902]
    assert people_count(app) == 0

    write_csv(path, CHINESE_HEADER, fix(rows))
    first = import_json(runner, path, operation)
    assert {k: first[k] for k in ("rows", "created", "updated", "unchanged", "invalid")} == {
        "rows": 1000,
        "created": 1000,
        "updated": 0,
        "unchanged": 0,
        "invalid": 0,
    }
    assert people_count(app) == 1000
    again = import_json(runner, path, operation)
    assert {k: again[k] for k in ("created", "updated", "unchanged", "invalid")} == {
        "created": 0,
        "updated": 0,
        "unchanged": 1000,
        "invalid": 0,
    }
    assert people_count(app) == 1000
    with db(app):
        assert Change.select().where(Change.entity == "person").count() == 1000
        entries = list(AuditEntry.select().where(AuditEntry.action == "roster.import"))
        assert [json.loads(e.details)["created"] for e in entries] == [1000, 0]
        p = Person.get(Person.external_id == "S00003")
        assert (p.full_name, p.sex, p.group_id) == ("刘小明", "male", operation["group"]["id"])
        assert (p.document_number, json.loads(p.alternate_names)) == ("E10000003", ["LIU Xiaoming"])
        # Stored as a keyed hash, matched through the field's conversion.
        assert p.document_key == blind_index("E10000003")
        assert p.birth_date.isoformat() == "1998-04-04"
    assert_no_personal_data(json.dumps(first) + json.dumps(again), rows)


def upload(
    client: FlaskClient, headers: dict[str, str], op: dict[str, Any], path: Path, **form: str
) -> Any:
    data: dict[str, Any] = {"file": (io.BytesIO(path.read_bytes()), path.name), **form}
    return client.post(
        f"/api/v1/operations/{op['id']}/rosters",
        data=data,
        headers=headers,
        content_type="multipart/form-data",
    )


def test_the_api_refuses_a_bad_roster_and_imports_the_fixed_one_once(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
) -> None:
    rows = thousand_rows_with_three_bad()
    path = write_csv(tmp_path / "roster.csv", CHINESE_HEADER, rows)
    resp = upload(client, admin_headers, operation, path)
    assert resp.status_code == 422
    error = resp.get_json()["error"]
    assert error["code"] == "roster_invalid"
    assert [(e["line"], e["column"]) for e in error["details"]["errors"]] == [
        (102, "姓名"),
        (502, "出生日期"),
        (902, "护照号码"),
    ]
    assert (error["details"]["rows"], error["details"]["invalid"]) == (1000, 3)
    assert_no_personal_data(resp.get_data(as_text=True), rows)
    assert people_count(app) == 0

    write_csv(path, CHINESE_HEADER, fix(rows))
    dry = upload(client, admin_headers, operation, path, dry_run="true")
    assert (dry.status_code, dry.get_json()["created"]) == (200, 1000)
    assert people_count(app) == 0
    done = upload(client, admin_headers, operation, path)
    assert (done.status_code, done.get_json()["created"]) == (201, 1000)
    again = upload(client, admin_headers, operation, path).get_json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 1000)
    assert people_count(app) == 1000


def test_the_api_in_valid_only_mode_answers_with_the_refused_lines(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
) -> None:
    rows = roster_rows(10)
    rows[3][3] = "maybe"
    path = write_csv(tmp_path / "r.csv", CHINESE_HEADER, rows)
    resp = upload(client, admin_headers, operation, path, valid_only="true")
    assert resp.status_code == 201
    body = resp.get_json()
    assert (body["created"], body["invalid"]) == (9, 1)
    assert body["rejected"] == [
        {
            "line": 5,
            "reasons": [
                {"line": 5, "column": "性别", "reason": "Write M, F, male, female, 男 or 女."}
            ],
        }
    ]
    assert people_count(app) == 9


def test_a_name_holding_a_nul_character_is_a_named_bad_line_not_a_failed_import(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
) -> None:
    rows = roster_rows(10)
    rows[3][1] = rows[3][1] + "\x00"  # PostgreSQL text cannot hold it
    path = write_csv(tmp_path / "r.csv", CHINESE_HEADER, rows)
    resp = upload(client, admin_headers, operation, path)
    assert resp.status_code == 422
    error = resp.get_json()["error"]
    assert [(e["line"], e["column"]) for e in error["details"]["errors"]] == [(5, "姓名")]
    assert_no_personal_data(resp.get_data(as_text=True), rows)
    assert people_count(app) == 0


def test_the_api_maps_columns_from_a_json_object_and_checks_its_form(
    app: Flask,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
) -> None:
    path = write_csv(tmp_path / "r.csv", ["Who", "Pass"], [["Anna Bauer", "X1"]])
    resp = upload(
        client,
        admin_headers,
        operation,
        path,
        map=json.dumps({"Who": "full_name", "Pass": "document_number"}),
    )
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["columns"] == {"Who": "full_name", "Pass": "document_number"}
    bad = upload(client, admin_headers, operation, path, map="[1]")
    assert bad.status_code == 422
    assert bad.get_json()["error"]["details"]["fields"] == {
        "map": ["Send a JSON object of header text to field."]
    }
    missing = client.post(
        f"/api/v1/operations/{operation['id']}/rosters",
        headers=admin_headers,
        data={},
        content_type="multipart/form-data",
    )
    assert missing.status_code == 400


def test_a_gb18030_roster_is_read(
    app: Flask, runner: FlaskCliRunner, operation: dict[str, Any], tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "gb.csv", CHINESE_HEADER, roster_rows(30), encoding="gb18030")
    assert not path.read_bytes().startswith(b"\xef\xbb\xbf")
    report = import_json(runner, path, operation)
    assert (report["created"], report["invalid"]) == (30, 0)
    with db(app):
        assert Person.get(Person.external_id == "S00000").full_name == "张伟"


def test_a_semicolon_separated_plain_utf8_roster_is_read(
    app: Flask, runner: FlaskCliRunner, operation: dict[str, Any], tmp_path: Path
) -> None:
    rows = [
        ["Олександр Шевченко", "M", "03.04.2001", "FA 123456"],
        ["Anna Kowalska", "female", "2000/12/31", "EA-99"],
    ]
    path = write_csv(
        tmp_path / "semi.csv",
        ["Full name", "Gender", "Date of birth", "Passport"],
        rows,
        encoding="utf-8",
        delimiter=";",
    )
    report = import_json(runner, path, operation)
    assert (report["created"], report["invalid"]) == (2, 0)
    with db(app):
        p = Person.get(Person.document_key == "FA123456")
        assert (p.full_name, p.sex, p.birth_date.isoformat()) == (
            "Олександр Шевченко",
            "male",
            "2001-04-03",
        )


def test_an_xlsx_roster_is_read_from_the_named_sheet_with_excel_dates(
    app: Flask, runner: FlaskCliRunner, operation: dict[str, Any], tmp_path: Path
) -> None:
    import datetime as dt

    from openpyxl import Workbook

    book = Workbook()
    book.active.title = "Notes"
    book.active.append(["nothing here"])
    sheet = book.create_sheet("名单")
    sheet.append(["学号", "姓", "名", "出生日期", "年龄", "证件号", "标签"])
    sheet.append(["A1", "王", "芳", dt.datetime(2001, 5, 6), 23, "G123", "学生、未成年"])
    sheet.append([None, None, None, None, None, None, None])
    sheet.append(["A2", "Kowal", "Jan", 36526, 24.0, "G 124", "student;minor"])
    sheet.append(["A3", "", "", "2001-01-01", "", "G125", ""])
    path = tmp_path / "roster.xlsx"
    book.save(path)

    refused = import_json(runner, path, operation, "--sheet", "名单", code=1)
    assert refused["error"]["details"]["errors"] == [
        {"line": 5, "column": "full_name", "reason": "Missing data for required field."}
    ]
    report = import_json(runner, path, operation, "--sheet", "名单", "--valid-only")
    assert (report["rows"], report["created"], report["invalid"]) == (3, 2, 1)
    with db(app):
        wang = Person.get(Person.external_id == "A1")
        assert (wang.full_name, wang.birth_date, wang.age) == ("王芳", dt.date(2001, 5, 6), 23)
        assert json.loads(wang.tags) == ["学生", "未成年"]
        jan = Person.get(Person.external_id == "A2")
        assert (jan.full_name, jan.birth_date, jan.document_key) == (
            "Jan Kowal",
            dt.date(2000, 1, 1),
            blind_index("G124"),
        )
    missing = import_json(runner, path, operation, "--sheet", "Nope", code=1)
    assert missing["error"]["details"] == {"sheets": ["Notes", "名单"]}


def test_columns_can_be_mapped_and_unknown_ones_are_named_in_a_warning(
    app: Flask, runner: FlaskCliRunner, operation: dict[str, Any], tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "m.csv",
        ["Student", "Pass No.", "Shoe size", "Remarks"],
        [["Anna Bauer", "X-1", "38", "ok"]],
    )
    refused = import_json(runner, path, operation, code=1)
    assert refused["error"]["code"] == "roster_invalid"
    assert "No name column" in refused["error"]["message"]
    report = import_json(
        runner,
        path,
        operation,
        "--map",
        "student=full_name",
        "--map",
        "PASS NO=document_number",
        "--map",
        "Remarks=ignore",
    )
    assert report["created"] == 1
    assert report["columns"] == {"Student": "full_name", "Pass No.": "document_number"}
    assert report["warnings"] == ["Ignored unknown columns: Shoe size."]
    bad = import_json(runner, path, operation, "--map", "Student=fullname", code=1)
    assert bad["error"]["message"] == "Unknown field 'fullname' in a column mapping."


@pytest.mark.parametrize(
    ("content", "code", "message"),
    [
        (b"", "roster_invalid", "The roster file is empty."),
        (b"\xef\xbb\xbf\r\n\r\n", "roster_invalid", "The roster file is empty."),
        (
            "姓名,护照号码\r\n".encode("utf-8-sig"),
            "roster_invalid",
            "The roster has a header but no rows.",
        ),
        (
            bytes(range(256)) * 40,
            "roster_unreadable",
            "The file is not a CSV or XLSX roster (it holds binary data).",
        ),
        (
            b"PK\x03\x04garbage",
            "roster_unreadable",
            "The file looks like a ZIP archive but is not an XLSX workbook.",
        ),
        (
            b"\x81\x30\x81" * 50,
            "roster_unreadable",
            "The file is neither UTF-8 nor GB18030 text, nor an XLSX workbook.",
        ),
    ],
)
def test_empty_header_only_and_garbage_files_are_refused_clearly(
    app: Flask,
    runner: FlaskCliRunner,
    operation: dict[str, Any],
    tmp_path: Path,
    content: bytes,
    code: str,
    message: str,
) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    error = import_json(runner, path, operation, code=1)["error"]
    assert (error["code"], error["message"]) == (code, message)
    assert people_count(app) == 0


def test_a_dry_run_counts_but_writes_nothing(
    app: Flask, runner: FlaskCliRunner, operation: dict[str, Any], tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "r.csv", CHINESE_HEADER, roster_rows(20))
    import_json(runner, path, operation)
    rows = roster_rows(25)
    rows[0][6] = "+86 000"
    path = write_csv(tmp_path / "r2.csv", CHINESE_HEADER, rows)
    report = import_json(runner, path, operation, "--dry-run")
    assert (report["dry_run"], report["created"], report["updated"], report["unchanged"]) == (
        True,
        5,
        1,
        19,
    )
    assert report["changes"] == [{"line": 2, "fields": ["phone"]}]
    assert people_count(app) == 20
    res = run_import(runner, path, operation, "--dry-run")
    assert "Would import 25 rows: 5 created, 1 updated, 19 unchanged, 0 invalid." in res.output
    with db(app):
        assert Person.get(Person.external_id == "S00000").phone == "+86 138 00000000"
        assert Change.select().where(Change.entity == "person").count() == 20


def test_valid_only_imports_the_good_rows_and_writes_the_bad_ones_to_a_rejects_file(
    app: Flask, runner: FlaskCliRunner, operation: dict[str, Any], tmp_path: Path
) -> None:
    rows = roster_rows(50)
    rows[4][4] = "31.02.2001"
    rows[7][1] = " "
    rows[9][0] = "S00002"
    path = write_csv(tmp_path / "r.csv", CHINESE_HEADER + ["备注"], [[*r, "x"] for r in rows])
    rejects = tmp_path / "rejects.csv"
    report = import_json(runner, path, operation, "--valid-only", "--rejects", str(rejects))
    assert (report["rows"], report["created"], report["invalid"]) == (50, 47, 3)
    assert people_count(app) == 47
    raw = rejects.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert table[0] == [*CHINESE_HEADER, "备注", "error"]
    assert [r[:-1] for r in table[1:]] == [[*rows[i], "x"] for i in (4, 7, 9)]
    assert [r[-1] for r in table[1:]] == [
        "line 6, 出生日期: Not a date; write YYYY-MM-DD, YYYY/MM/DD or DD.MM.YYYY.",
        "line 9, 姓名: Missing data for required field.",
        "line 11, 编号: Same external id as line 4.",
    ]
    # Fixed, the rejects file imports as it is (the extra 'error' column is ignored).
    fixed = [[*r[:4], "2001-02-28", *r[5:]] if r[0] == "S00004" else r for r in table[1:]]
    fixed = [[r[0], "李娜" if r[0] == "S00007" else r[1], *r[2:]] for r in fixed]
    fixed = [["S00009", *r[1:]] if r[-1].startswith("line 11") else r for r in fixed]
    write_csv(rejects, table[0], fixed)
    again = import_json(runner, rejects, operation)
    assert (again["created"], again["invalid"], again["warnings"]) == (
        3,
        0,
        ["Ignored unknown columns: 备注, error."],
    )
    assert people_count(app) == 50


def test_reimporting_updates_by_external_id_and_names_only_the_changed_fields(
    app: Flask, runner: FlaskCliRunner, operation: dict[str, Any], tmp_path: Path
) -> None:
    header = ["ID", "Name", "Sex", "Phone", "Tags"]
    path = write_csv(
        tmp_path / "r.csv",
        header,
        [["1", "Anna Bauer", "F", "+49 1", "student"], ["2", "Jan Kowal", "M", "+48 2", ""]],
    )
    import_json(runner, path, operation)
    write_csv(
        path,
        header,
        [["1", "Anna Bauer-Roth", "F", "+49 9", "student, minor"], ["2", "Jan Kowal", "M", "", ""]],
    )
    report = import_json(runner, path, operation)
    assert (report["created"], report["updated"], report["unchanged"]) == (0, 1, 1)
    assert report["changes"] == [{"line": 2, "fields": ["full_name", "phone", "tags"]}]
    assert_no_personal_data(json.dumps(report), [["", "Anna Bauer-Roth", "", "", "", "", "+49 9"]])
    with db(app):
        jan = Person.get(Person.external_id == "2")
        assert jan.phone == "+48 2"  # an empty cell erases nothing
        assert Change.select().where(Change.entity == "person").count() == 3


def test_reimporting_a_seen_person_into_another_group_moves_their_derived_state_too(
    app: Flask,
    runner: FlaskCliRunner,
    client: FlaskClient,
    admin_headers: dict[str, str],
    operation: dict[str, Any],
    tmp_path: Path,
) -> None:
    """A re-import that changes a group or a name changes what a rebuild would derive (the
    person's group, counted in its summary; the name keys duplicates are found by), so the
    stored states of those people are derived again in the same transaction."""
    from server.reconcile import rebuild
    from server.reconcile.queues import group_summary
    from tests.sync.helpers import enrol_device

    app.config["DERIVE"] = "inline"
    op_id = operation["id"]
    cps = [c["id"] for c in operation["checkpoints"]]
    bus2 = client.post(
        f"/api/v1/operations/{op_id}/groups",
        json={"name": "Bus 2", "expected_size": 40, "route": cps},
        headers=admin_headers,
    ).get_json()
    header = ["ID", "Name", "Group"]
    path = write_csv(
        tmp_path / "r.csv", header, [["1", "Anna Bauer", "Bus 1"], ["2", "Jan Kowal", "Bus 1"]]
    )
    import_json(runner, path, operation)
    with db(app):
        anna, jan = (Person.get(Person.external_id == x).id for x in ("1", "2"))
    phone = enrol_device(app, client, admin_headers, op_id, tmp_path / "phone.db")
    phone.checkin(anna, checkpoint=cps[0], status="boarded")
    phone.checkin(jan, checkpoint=cps[0], status="boarded")
    phone.push(base_delay=0, max_delay=0)
    phone.close()

    write_csv(path, header, [["1", "Anna Bauer-Roth", "Bus 2"], ["2", "Jan Kowal", "Bus 1"]])
    report = import_json(runner, path, operation)
    assert report["changes"] == [{"line": 2, "fields": ["full_name", "group"]}]

    def stored() -> dict[str, tuple[Any, ...]]:
        with db(app):
            return {
                str(s.person): (s.group, s.state, s.name_keys, s.event_count, s.version)
                for s in PersonState.select().where(PersonState.operation == op_id)
            }

    def accounted(group: int) -> int:
        with db(app):
            summary = group_summary(op_id, group)
            assert summary is not None
            return int(summary["accounted"])

    after_import = stored()
    assert after_import[str(anna)][0] == bus2["id"]
    assert json.loads(after_import[str(anna)][2]) == ["anna bauerroth"]
    assert (accounted(operation["group"]["id"]), accounted(bus2["id"])) == (1, 1)
    with db(app), database.atomic():
        rebuild(op_id)
    assert stored() == after_import


def test_reimporting_matches_people_by_normalised_document_number(
    app: Flask, runner: FlaskCliRunner, operation: dict[str, Any], tmp_path: Path
) -> None:
    header = ["Name", "Passport number", "Nationality"]
    path = write_csv(tmp_path / "r.csv", header, [["Anna Bauer", "ab-123 o45", "DE"]])
    import_json(runner, path, operation)
    write_csv(path, header, [["Anna Bauer", "AB123045", "AT"]])
    report = import_json(runner, path, operation)
    assert (report["created"], report["updated"]) == (0, 1)
    assert report["changes"] == [{"line": 2, "fields": ["document_number", "nationality"]}]
    assert people_count(app) == 1


def test_a_repeated_external_id_inside_one_file_names_both_lines(
    app: Flask, runner: FlaskCliRunner, operation: dict[str, Any], tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "r.csv",
        ["id", "name"],
        [["7", "Anna Bauer"], ["8", "Jan Kowal"], ["7", "Eva Novak"]],
    )
    error = import_json(runner, path, operation, code=1)["error"]
    assert error["details"]["errors"] == [
        {"line": 4, "column": "id", "reason": "Same external id as line 2."}
    ]
    assert people_count(app) == 0


def test_groups_come_from_a_column_or_the_whole_file_and_must_exist(
    app: Flask, runner: FlaskCliRunner, operation: dict[str, Any], tmp_path: Path
) -> None:
    rows = roster_rows(3)
    rows[1][7] = "Bus 99"
    path = write_csv(tmp_path / "r.csv", CHINESE_HEADER, rows)
    error = import_json(runner, path, operation, code=1)["error"]
    assert error["details"]["errors"] == [
        {"line": 3, "column": "分组", "reason": "No group of this name in the operation."}
    ]
    rows[1][7] = "bus 1"  # case does not matter
    write_csv(path, CHINESE_HEADER, rows)
    assert import_json(runner, path, operation)["created"] == 3
    plain = write_csv(tmp_path / "p.csv", ["name"], [["Anna Bauer"]])
    assert import_json(runner, plain, operation, "--group", "Bus 1")["created"] == 1
    with db(app):
        assert Person.select().where(Person.group == operation["group"]["id"]).count() == 4
    unknown = import_json(runner, plain, operation, "--group", "Bus 2", code=1)["error"]
    assert unknown["message"] == "No group of this name in the operation."


def test_the_fields_command_lists_aliases_and_every_command_has_an_example(
    runner: FlaskCliRunner,
) -> None:
    res = runner.invoke(args=["roster", "fields", "--json"])
    assert res.exit_code == 0
    aliases = json.loads(res.output)
    assert "护照号码" in aliases["document_number"]
    assert "姓名" in aliases["full_name"]
    for args in (["roster", "import"], ["roster", "fields"]):
        assert "Example:" in runner.invoke(args=[*args, "--help"]).output


def test_twenty_thousand_rows_import_with_bounded_memory(
    app: Flask, db_url: str, instance_path: Path, operation: dict[str, Any], tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "big.csv", CHINESE_HEADER, roster_rows(20000))
    env = {**os.environ, "MUSTER_DATABASE_URL": db_url, "MUSTER_INSTANCE_PATH": str(instance_path)}
    started = time.perf_counter()
    # A process of its own, so that its peak resident memory is the import's alone.
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            # Report this process's own peak RSS at exit from /proc (VmHWM belongs to the
            # process image; getrusage's maxrss would include the forking pytest process).
            "import atexit, re, runpy, sys; atexit.register(lambda: sys.stderr.write('PEAK_KB=' "
            "+ re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1) "
            "+ '\\n')); "
            "sys.argv = ['muster-server', *sys.argv[1:]]; "
            "runpy.run_module('server.cli', run_name='__main__')",
            "roster",
            "import",
            str(path),
            "--operation",
            str(operation["id"]),
            "--json",
        ],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr[-2000:]
    peak_mb = int(proc.stderr.rsplit("PEAK_KB=", 1)[1].split()[0]) / 1024
    assert json.loads(proc.stdout)["created"] == 20000
    assert people_count(app) == 20000
    assert peak_mb < 200
    print(
        f"20k rows: {elapsed:.1f} s incl. start-up ({20000 / elapsed:.0f} rows/s), "
        f"peak RSS {peak_mb:.0f} MB"
    )
