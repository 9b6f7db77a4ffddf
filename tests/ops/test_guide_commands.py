"""The operator's guide's backup, restore, migrate-db and purge commands work as written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from server.db import database, open_database
from server.models import ALL_MODELS, Event
from tests.conftest import REPO
from tests.ops.helpers import PG_URL, needs_postgresql, reset_postgresql

pytestmark = needs_postgresql

GUIDE = REPO / "docs" / "operations.md"
#: The host-specific parts of the guide's examples, and what this test uses instead.
BACKUP_DIR = "/var/backups/muster"
PG_EXAMPLE = "postgresql://muster@db.internal/muster"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'muster.db'}"


def guide_commands() -> list[str]:
    """``muster-server`` lines of the guide's ``sh`` blocks, for the commands this issue adds."""
    blocks = re.findall(r"```sh\n(.*?)```", GUIDE.read_text(), flags=re.S)
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    wanted = ("backup", "restore", "migrate-db", "purge")
    return [
        line for line in lines if line.startswith("muster-server ") and line.split()[1] in wanted
    ]


def test_the_guides_commands_back_up_restore_and_move_every_event(
    populated: dict[str, Any], db_url: str, instance_path: Path, tmp_path: Path
) -> None:
    commands = guide_commands()
    assert [c.split()[1] for c in commands] == ["backup", "restore", "migrate-db"]
    reset_postgresql(PG_URL)
    backups = tmp_path / "backups"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "MUSTER_INSTANCE_PATH": str(instance_path),
        "MUSTER_DATABASE_URL": db_url,
    }

    def run(command: str) -> None:
        line = command.replace(BACKUP_DIR, str(backups)).replace(PG_EXAMPLE, PG_URL)
        out = subprocess.run(
            ["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert out.returncode == 0, f"{command}\n{out.stdout}\n{out.stderr}"

    backup, restore, migrate = commands
    run(backup)
    assert len(list(backups.iterdir())) == 1
    database.connect(reuse_if_open=True)
    Event.delete().execute()
    database.close()
    run(restore)
    database.connect(reuse_if_open=True)
    assert {str(e.id) for e in Event.select(Event.id)} == populated["event_ids"]
    database.close()
    run(migrate)
    target = open_database(PG_URL)
    with target.bind_ctx(ALL_MODELS):
        assert {str(e.id) for e in Event.select(Event.id)} == populated["event_ids"]
    target.close()
