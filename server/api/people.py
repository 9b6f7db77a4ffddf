"""People of an operation, as the caller's role may see them."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint

from server.api.openapi import api_doc
from server.api.util import paging
from server.auth.access import current_staff, operation_for, require_staff
from server.errors import NotFound
from server.models import Person
from server.people.schemas import PersonSchema, person_schema_for

bp = Blueprint("people", __name__)


@bp.get("/operations/<int:op_id>/people")
@api_doc(
    "People of an operation, as the role may see them",
    query={"limit": "page size", "offset": "start"},
)
@require_staff()
def list_people(op_id: int) -> dict[str, Any]:
    staff = current_staff()
    op = operation_for(staff, op_id)
    limit, offset = paging()
    query = Person.select().where(Person.operation == op).order_by(Person.entry_date, Person.id)
    total = query.count()
    rows = list(query.limit(limit).offset(offset))
    schema = person_schema_for(staff.role)
    return {"items": schema.dump(rows, many=True), "total": total, "limit": limit, "offset": offset}


@bp.get("/operations/<int:op_id>/people/<uuid:person_id>")
@api_doc("One person, as the role may see them", response=PersonSchema)
@require_staff()
def get_person(op_id: int, person_id: uuid.UUID) -> dict[str, Any]:
    staff = current_staff()
    op = operation_for(staff, op_id)
    person = Person.get_or_none((Person.operation == op) & (Person.id == person_id))
    if person is None:
        raise NotFound("No such person in this operation.")
    return person_schema_for(staff.role).dump(person)
