"""Acceptance: ``runyard status --wait`` ends once nothing more can run, and says why jobs are
left Queued: their workflow is Obsolete or stopped (Draft), or their run is paused. A server
alone (no worker: a Queued job stays Queued), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import Installation, start_server, stop
from tests.conftest import TASK_TYPES, WORKFLOWS

# A deadline, not a measurement: a wait that never ends fails here instead of hanging.
DEADLINE = 60


@pytest.fixture
def server(tmp_path: Path, database_url: str) -> Iterator[Installation]:
    """A server alone, with Linear (Source -> Double -> Add) started and one run whose
    Double is Queued."""
    extra = () if database_url.startswith("sqlite") else ("--database-url", database_url)
    installation = start_server(tmp_path / "server", *extra)
    try:
        tasks = [str(TASK_TYPES / t) for t in ("Source", "Double", "Add")]
        installation.cli("import", *tasks, str(WORKFLOWS / "Linear"))
        installation.cli("workflow", "start", "Linear")
        installation.cli("run", "new", "Linear", "Source", "--outputs", '{"value": 1}')
        yield installation
    finally:
        stop(installation)


def wait(server: Installation, *extra: str) -> tuple[dict[str, Any], str]:
    """``runyard status Linear --wait --json``: the status it ends with, and its stderr."""
    result = server.cli("status", "Linear", "--wait", "--json", *extra, timeout=DEADLINE)
    return json.loads(result.stdout), result.stderr


def double_state(status: dict[str, Any]) -> str:
    (run,) = status["runs"]
    return str(run["jobs"]["Double"]["state"])


def test_status_wait_ends_for_an_obsolete_workflow_and_says_its_queued_jobs_wait_for_a_start(
    server: Installation,
) -> None:
    server.cli("workflow", "obsolete", "Linear")
    status, errors = wait(server)
    assert double_state(status) == "Queued"
    assert "1 Queued job" in errors and "Obsolete" in errors, errors
    assert "runyard workflow start Linear" in errors, errors


def test_status_wait_ends_for_a_stopped_workflow_and_says_its_queued_jobs_wait_for_a_start(
    server: Installation,
) -> None:
    server.cli("workflow", "stop", "Linear")
    status, errors = wait(server)
    assert double_state(status) == "Queued"
    assert "1 Queued job" in errors and "Draft" in errors, errors
    assert "runyard workflow start Linear" in errors, errors


def test_status_wait_ends_when_the_only_queued_job_is_in_a_paused_run(
    server: Installation,
) -> None:
    (run,) = server.api("GET", "/api/workflows/Linear/status")["runs"]
    server.cli("run", "priority", str(run["id"]), "paused")
    status, errors = wait(server)
    assert double_state(status) == "Queued"
    assert "1 Queued job" in errors and "paused" in errors, errors


def test_status_wait_without_a_progress_bar_ends_at_once_when_nothing_can_run(
    server: Installation,
) -> None:
    """The table form (not --json) ends too, the reason after the table."""
    server.cli("workflow", "obsolete", "Linear")
    result = server.cli("status", "Linear", "--wait", timeout=DEADLINE)
    assert "Queued" in result.stdout
    assert "Obsolete" in result.stderr, result.stderr
