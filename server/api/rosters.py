"""Roster upload: ``POST /operations/<id>/rosters`` (multipart, field ``file``)."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, request
from marshmallow import RAISE, Schema, ValidationError, fields, validates

from server.api.openapi import api_doc
from server.api.util import refuse_nul
from server.auth.access import current_staff, operation_for, require_staff
from server.errors import MusterError
from server.rosters.rows import Row
from server.rosters.service import ImportOptions, import_roster
from sync.protocol import ErrorCode

bp = Blueprint("rosters", __name__)


class RosterUploadSchema(Schema):
    """The form fields that go with an uploaded roster."""

    class Meta:
        unknown = RAISE

    dry_run = fields.Bool(load_default=False)
    valid_only = fields.Bool(load_default=False)
    group = fields.Str(load_default=None)
    sheet = fields.Str(load_default=None)
    map = fields.Str(load_default="{}")

    @validates("map")
    def _json_object(self, value: str, **_: Any) -> None:
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            raise ValidationError("Send a JSON object of header text to field.") from exc
        if not isinstance(parsed, dict) or not all(isinstance(v, str) for v in parsed.values()):
            raise ValidationError("Send a JSON object of header text to field.")


class RosterUploadFormSchema(RosterUploadSchema):
    """The whole multipart form, for the OpenAPI document: the fields and the file."""

    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary"})


upload_schema = RosterUploadSchema()


@bp.post("/operations/<int:op_id>/rosters")
@api_doc(
    "Import a roster file (admin); dry_run checks it only",
    body=RosterUploadFormSchema,
    status=201,
    content_type="multipart/form-data",
)
@require_staff("admin")
def upload_roster(op_id: int) -> tuple[dict[str, Any], int]:
    staff = current_staff()
    op = operation_for(staff, op_id, "admin")
    upload = request.files.get("file")
    if upload is None:
        raise MusterError(
            "Send the roster as a multipart form field named 'file'.", code=ErrorCode.BAD_REQUEST
        )
    refuse_nul(request.form.to_dict())
    form = upload_schema.load(request.form.to_dict())
    options = ImportOptions(
        group=form["group"],
        mapping=json.loads(form["map"]),
        dry_run=form["dry_run"],
        valid_only=form["valid_only"],
        sheet=form["sheet"],
    )
    rejected: list[dict[str, Any]] = []

    def on_reject(_header: list[str], row: Row) -> None:
        rejected.append({"line": row.line, "reasons": [e.as_dict() for e in row.errors]})

    report = import_roster(op, upload.stream, options, actor=staff, on_reject=on_reject)
    body = report.as_dict()
    body["rejected"] = rejected[:1000]
    return body, 200 if options.dry_run else 201
