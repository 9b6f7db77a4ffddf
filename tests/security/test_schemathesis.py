"""schemathesis against the real server's ``/api/openapi.json``, with every built-in check.

The document is the one the app generates from its marshmallow schemas
(``server/api/openapi.py``); requests go over loopback to a real ``muster-server serve`` on a
seeded operation (``seed.py``). Each operation runs four ways: positive and negative data, with
generated path parameters and with path parameters pointing at real objects of the seed. Every
check schemathesis has is on (server errors, status codes, content types, headers, response
schemas, negative data rejected, positive data accepted, missing headers, unsupported methods,
auth ignored, use after free, resource availability, object-level authorisation).

The sync endpoints (``/api/v1/sync/*``) are left out: every request needs a device signature
over its body, which schemathesis cannot make; ``tests/reliability/test_envelope_fuzzing.py``
fuzzes them with signed and unsigned bodies instead.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks

from tests.conftest import BACKENDS, PG_URL, LiveServer, free_port, reset_postgresql
from tests.security.seed import Seeded, seed

pytestmark = pytest.mark.storage

SOAK = os.environ.get("MUSTER_SOAK") == "1"
#: Examples per operation, mode and parameter source (4 runs of each operation).
EXAMPLES = 100 if SOAK else 4
#: Operations whose valid requests depend on more than OpenAPI 3.0 can say, so a schema-valid
#: request may rightly get 422: a resolution needs different fields per ``kind`` (marshmallow's
#: ``validates_schema``), a roster upload needs a file that is a roster, a group's route must
#: name checkpoints of its operation. Every other check runs on them.
SEMANTIC = {
    ("POST", "/api/v1/operations/{op_id}/resolutions"),
    ("POST", "/api/v1/operations/{op_id}/rosters"),
    ("POST", "/api/v1/operations/{op_id}/groups"),
}


@dataclass
class Target:
    server: LiveServer
    seeded: Seeded
    password: str


@pytest.fixture(scope="module", params=BACKENDS)
def target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    """A real server on loopback with the seed; log-in limits off (schemathesis logs in a lot)."""
    tmp = tmp_path_factory.mktemp(f"schemathesis-{request.param}")
    if request.param == "postgresql":
        reset_postgresql(PG_URL)
        url = PG_URL
    else:
        url = f"sqlite:///{tmp / 'muster.db'}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MUSTER_RATE_LIMIT_LOGIN", "")
        instance = tmp / "instance"
        instance.mkdir()
        server = LiveServer(instance, url, free_port()).start()
    try:
        password = re.findall(r"password: (\S+)", server.output.read_text())[-1]
        yield Target(server, seed(server, tmp), password)
    finally:
        server.stop()


def _token(t: Target) -> str:
    resp = httpx.post(
        t.server.url + "/api/v1/tokens", json={"username": "admin", "password": t.password}
    )
    assert resp.status_code == 201, resp.text
    return str(resp.json()["token"])


def target_rules(t: Target) -> list[Any]:
    """The app's ``/api/v1`` rules other than sync (the app built, not served, for its URL map)."""
    from server import create_app

    app = create_app(
        {"DATABASE_URL": t.server.database_url, "INSTANCE_PATH": str(t.server.instance)}
    )
    return [
        r
        for r in app.url_map.iter_rules()
        if r.rule.startswith("/api/v1/") and not r.rule.startswith("/api/v1/sync/")
    ]


def _real_parameters(t: Target, path: str) -> dict[str, Any]:
    s = t.seeded
    values = {
        "op_id": s.op,
        "group_id": s.group,
        "person_id": s.people[0],
        "device_id": str(s.devices[0].device_id),
        "queue": "missing",
        "date": "2026-01-01",
        "name": "summary.json",
    }
    return {n: values[n] for n in re.findall(r"{(\w+)}", path)}


@dataclass
class Tally:
    """What the runs did: examples, answer statuses, and every failure schemathesis raised."""

    examples: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


def _fuzz(
    t: Target,
    operation: Any,
    mode: GenerationMode,
    params: dict[str, Any],
    token: str,
    tally: Tally,
) -> None:
    """Run ``EXAMPLES`` cases of one operation in one mode; collect failures, do not shrink."""
    load_all_checks()
    semantic = (operation.method.upper(), operation.path) in SEMANTIC
    checks = [
        c for c in CHECKS.get_all() if not (semantic and c.__name__ == "positive_data_acceptance")
    ]
    spends_token = operation.method.upper() == "DELETE" and operation.path.endswith("current")

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=params or None))
    def run(case: schemathesis.Case) -> None:
        tally.examples += 1
        headers = {}
        header = case.meta.components.get("header") if case.meta else None
        if header is None or header.mode.is_positive:
            # Negative header cases drop or garble Authorization on purpose: keep theirs.
            headers = {"Authorization": f"Bearer {_token(t) if spends_token else token}"}
        try:
            resp = case.call_and_validate(base_url=t.server.url, headers=headers, checks=checks)
            tally.statuses[resp.status_code] += 1
        except (AssertionError, BaseExceptionGroup) as exc:
            tally.failures.append(f"{operation.label} [{mode}] {exc}"[:3000])

    run()


def test_schemathesis_finds_no_server_error_and_no_accepted_invalid_data(target: Target) -> None:
    schema = schemathesis.openapi.from_url(target.server.url + "/api/openapi.json")
    token = _token(target)
    operations = [op.ok() for op in schema.get_all_operations() if "/sync/" not in op.ok().path]
    tally = Tally()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for params in ({}, _real_parameters(target, operation.path)):
                _fuzz(target, operation, mode, params, token, tally)
    summary = (
        f"{len(operations)} operations, {tally.examples} examples, "
        f"statuses {dict(sorted(tally.statuses.items()))}"
    )
    print(summary)
    (target.server.instance / "failures.txt").write_text("\n\n".join(tally.failures))
    kinds = Counter(
        f"{f.split(' [')[0]}: {line.strip()}"
        for f in tally.failures
        for line in f.splitlines()
        if line.strip().startswith("- ST") or "is not" in line or "unexpected" in line
    )
    assert tally.failures == [], "\n".join(f"{n} x {k}" for k, n in kinds.most_common())
    documented = {
        (method, rule.rule)
        for rule in target_rules(target)
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    assert len(operations) == len(documented)
    assert sum(n for status, n in tally.statuses.items() if status >= 500) == 0
    assert len(operations) * 4 <= tally.examples <= len(operations) * 4 * EXAMPLES
