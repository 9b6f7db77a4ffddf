"""The data model. See ``docs/data-model.md`` for the tables and their invariants."""

from __future__ import annotations

from server.models.base import BaseModel, utcnow
from server.models.changes import Change
from server.models.device import CaptureSession, Device, EnrolmentCode
from server.models.event import Event, QuarantinedRecord
from server.models.operation import (
    CHECKPOINT_KINDS,
    OPERATION_STATUSES,
    Checkpoint,
    Group,
    Operation,
    RouteStop,
)
from server.models.person import PERSON_SOURCES, SEXES, Person
from server.models.reconcile import (
    DeriveBacklog,
    PersonLink,
    PersonState,
    ReconcileMark,
    Resolution,
)
from server.models.report import ReportRun
from server.models.staff import ROLES, ApiToken, Assignment, AuditEntry, StaffUser

#: Every table, in creation order.
ALL_MODELS: list[type[BaseModel]] = [
    Operation,
    Checkpoint,
    Group,
    RouteStop,
    Person,
    StaffUser,
    Assignment,
    ApiToken,
    AuditEntry,
    Change,
    Device,
    EnrolmentCode,
    CaptureSession,
    Event,
    QuarantinedRecord,
    PersonState,
    Resolution,
    PersonLink,
    ReportRun,
    ReconcileMark,
    DeriveBacklog,
]

__all__ = [
    "ALL_MODELS",
    "CHECKPOINT_KINDS",
    "OPERATION_STATUSES",
    "PERSON_SOURCES",
    "ROLES",
    "SEXES",
    "ApiToken",
    "Assignment",
    "AuditEntry",
    "BaseModel",
    "CaptureSession",
    "Device",
    "EnrolmentCode",
    "Event",
    "QuarantinedRecord",
    "Change",
    "Checkpoint",
    "Group",
    "Operation",
    "Person",
    "ReconcileMark",
    "DeriveBacklog",
    "PersonLink",
    "PersonState",
    "ReportRun",
    "Resolution",
    "RouteStop",
    "StaffUser",
    "utcnow",
]
