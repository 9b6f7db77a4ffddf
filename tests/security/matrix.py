"""The access-control table: every JSON API endpoint and console page, who may do what.

Each staff row reads: for the principal's **own** operation the status for anonymous, viewer,
coordinator and admin; for **another** operation (one the principal is not assigned to) the
status for viewer, coordinator and admin (``None`` when the route has no operation); and the
status with a **revoked** token and for a **disabled** staff account (an admin in both cases).
Sync rows read: unsigned request, unknown device, revoked device, enrolled device (enrol: no
code, unknown code, used code, fresh code).

``test_matrix.py`` asserts the table covers every ``/api/v1`` and ``/console`` rule of the app,
so a new endpoint fails the suite until it is added here.
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("anonymous", "viewer", "coordinator", "admin")
STAFF_ROLES = ROLES[1:]


@dataclass(frozen=True)
class Row:
    """One route (with a variant name when one rule needs two rows) and its expected statuses."""

    method: str
    rule: str
    own: tuple[int, int, int, int]
    other: tuple[int, int, int] | None
    revoked: int
    disabled: int
    variant: str = ""


@dataclass(frozen=True)
class SyncRow:
    """A device route: unsigned/no code, unknown device/code, revoked device/used code, ok."""

    method: str
    rule: str
    unsigned: int
    unknown: int
    revoked: int
    ok: int


OP = "/api/v1/operations/<int:op_id>"
C = "/console/operations/<int:op_id>"
# Shorthands: anyone assigned may read; other operations are invisible (404).
READ = (401, 200, 200, 200)
HIDDEN = (404, 404, 404)

API: list[Row] = [
    Row("GET", "/api/v1/me", READ, None, 401, 401),
    Row("GET", "/api/v1/operations", READ, None, 401, 401),
    Row("POST", "/api/v1/operations", (401, 403, 403, 201), None, 401, 401),
    Row("GET", "/api/v1/staff", (401, 403, 403, 200), None, 401, 401),
    Row("POST", "/api/v1/staff", (401, 403, 403, 201), None, 401, 401),
    # Log-in with the principal's own username and password (anonymous: a wrong password).
    Row("POST", "/api/v1/tokens", (401, 201, 201, 201), None, 201, 401),
    Row("DELETE", "/api/v1/tokens/current", (401, 204, 204, 204), None, 401, 401),
    Row("GET", OP, READ, HIDDEN, 401, 401),
    Row("GET", f"{OP}/audit", (401, 403, 200, 200), (403, 404, 404), 401, 401),
    Row("GET", f"{OP}/checkpoints", READ, HIDDEN, 401, 401),
    Row("POST", f"{OP}/checkpoints", (401, 403, 403, 201), (403, 403, 404), 401, 401),
    Row("GET", f"{OP}/devices", READ, HIDDEN, 401, 401),
    Row(
        "POST",
        f"{OP}/devices/<uuid:device_id>/revoke",
        (401, 403, 403, 200),
        (403, 403, 404),
        401,
        401,
    ),
    Row("GET", f"{OP}/discrepancies/<queue>", READ, HIDDEN, 401, 401),
    Row("POST", f"{OP}/enrolments", (401, 403, 403, 201), (403, 403, 404), 401, 401),
    Row("GET", f"{OP}/groups", READ, HIDDEN, 401, 401),
    Row("POST", f"{OP}/groups", (401, 403, 403, 201), (403, 403, 404), 401, 401),
    Row("GET", f"{OP}/groups/<int:group_id>/summary", READ, HIDDEN, 401, 401),
    Row("GET", f"{OP}/overview", READ, HIDDEN, 401, 401),
    Row("GET", f"{OP}/people", READ, HIDDEN, 401, 401),
    Row("GET", f"{OP}/people/<uuid:person_id>", READ, HIDDEN, 401, 401),
    Row("GET", f"{OP}/people/<uuid:person_id>/timeline", READ, HIDDEN, 401, 401),
    Row("GET", f"{OP}/quarantine", (401, 403, 200, 200), (403, 404, 404), 401, 401),
    Row("GET", f"{OP}/reports", READ, HIDDEN, 401, 401),
    Row("GET", f"{OP}/reports/<date>/files/<name>", READ, HIDDEN, 401, 401, "summary.json"),
    Row(
        "GET",
        f"{OP}/reports/<date>/files/<name>",
        (401, 403, 200, 200),
        HIDDEN,
        401,
        401,
        "people-RESTRICTED.csv",
    ),
    Row("GET", f"{OP}/reports/<date>/verify", READ, HIDDEN, 401, 401),
    Row("GET", f"{OP}/resolutions", READ, HIDDEN, 401, 401),
    Row("POST", f"{OP}/resolutions", (401, 403, 201, 201), (403, 404, 404), 401, 401),
    Row("GET", f"{OP}/roster", READ, HIDDEN, 401, 401),
    Row("GET", f"{OP}/roster.csv", READ, HIDDEN, 401, 401),
    Row("POST", f"{OP}/roster/search", READ, HIDDEN, 401, 401),
    Row("POST", f"{OP}/roster/search.csv", READ, HIDDEN, 401, 401),
    Row("POST", f"{OP}/rosters", (401, 403, 403, 201), (403, 403, 404), 401, 401),
    Row("GET", f"{OP}/exports/roster.csv", (401, 403, 200, 200), (403, 404, 404), 401, 401),
    Row("GET", f"{OP}/exports/roster.xlsx", (401, 403, 200, 200), (403, 404, 404), 401, 401),
    Row("GET", f"{OP}/exports/pfif.xml", (401, 403, 200, 200), (403, 404, 404), 401, 401),
]

# Console pages answer a missing or dead session with a redirect to the log-in page (302), a
# role too low with 403, and another operation with 404 (the role check comes after it).
PAGE = (302, 200, 200, 200)

CONSOLE: list[Row] = [
    Row("GET", "/console/", (302, 302, 302, 302), None, 302, 302),
    Row("GET", "/console/login", (200, 200, 200, 200), None, 200, 200),
    # Log-in form with the principal's own password (anonymous: a wrong one).
    Row("POST", "/console/login", (401, 303, 303, 303), None, 303, 401),
    Row("POST", "/console/logout", (303, 303, 303, 303), None, 303, 303),
    Row("POST", "/console/lang", (303, 303, 303, 303), None, 303, 303),
    Row("GET", "/console/static/<path:filename>", (200, 200, 200, 200), None, 200, 200),
    Row("GET", "/console/operations", PAGE, None, 302, 302),
    Row("GET", C, PAGE, HIDDEN, 302, 302),
    Row("GET", f"{C}/roster", PAGE, HIDDEN, 302, 302),
    Row("POST", f"{C}/roster", PAGE, HIDDEN, 302, 302),
    Row("GET", f"{C}/people/<uuid:person_id>", PAGE, HIDDEN, 302, 302),
    Row("GET", f"{C}/queues/<name>", PAGE, HIDDEN, 302, 302),
    Row("GET", f"{C}/devices", PAGE, HIDDEN, 302, 302),
    Row("GET", f"{C}/reports", PAGE, HIDDEN, 302, 302),
    Row("GET", f"{C}/reports/<date>/verify", PAGE, HIDDEN, 302, 302),
    Row("GET", f"{C}/reports/<date>/files/<name>", PAGE, HIDDEN, 302, 302, "summary.json"),
    Row(
        "GET",
        f"{C}/reports/<date>/files/<name>",
        (302, 403, 200, 200),
        HIDDEN,
        302,
        302,
        "people-RESTRICTED.csv",
    ),
    Row("GET", f"{C}/exports/<name>", (302, 403, 200, 200), HIDDEN, 302, 302, "roster.csv"),
    Row("POST", f"{C}/resolutions", (302, 403, 303, 303), HIDDEN, 302, 302),
    Row("POST", f"{C}/devices/code", (302, 403, 403, 200), HIDDEN, 302, 302),
    Row("POST", f"{C}/devices/<uuid:device_id>/revoke", (302, 403, 403, 303), HIDDEN, 302, 302),
]

SYNC: list[SyncRow] = [
    SyncRow("POST", "/api/v1/sync/enrol", 422, 403, 403, 201),
    SyncRow("POST", "/api/v1/sync/push", 401, 401, 403, 200),
    SyncRow("GET", "/api/v1/sync/pull", 401, 401, 403, 200),
]

PRINCIPALS = (*ROLES, "revoked", "disabled")


@dataclass(frozen=True)
class Case:
    """One request of the matrix and the status it must get."""

    row: Row | SyncRow
    principal: str
    target: str  # "own", "other", or "" for routes without an operation / sync states
    expected: int

    @property
    def id(self) -> str:
        variant = f"[{self.row.variant}]" if isinstance(self.row, Row) and self.row.variant else ""
        where = f"-{self.target}" if self.target else ""
        return f"{self.row.method} {self.row.rule}{variant} {self.principal}{where}"


def cases() -> list[Case]:
    """Every cell of the table as one case."""
    out: list[Case] = []
    for row in API + CONSOLE:
        for role, status in zip(ROLES, row.own, strict=True):
            out.append(Case(row, role, "own" if row.other else "", status))
        if row.other is not None:
            for role, status in zip(STAFF_ROLES, row.other, strict=True):
                out.append(Case(row, role, "other", status))
        out.append(Case(row, "revoked", "own" if row.other else "", row.revoked))
        out.append(Case(row, "disabled", "own" if row.other else "", row.disabled))
    for srow in SYNC:
        for state, status in zip(
            ("unsigned", "unknown", "revoked", "ok"),
            (srow.unsigned, srow.unknown, srow.revoked, srow.ok),
            strict=True,
        ):
            out.append(Case(srow, state, "", status))
    return out
