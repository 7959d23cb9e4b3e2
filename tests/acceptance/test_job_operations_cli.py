"""Acceptance, on a real ``runyard up`` (SQLite and PostgreSQL) through the CLI: restarting
many jobs at once, by serials or by ``--workflow`` and ``--state``; why a reduce waits; a
task type's automatic retries; a running script no longer shown as only claimed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.acceptance.conftest import Installation, wait_for
from tests.conftest import TASK_TYPES, WORKFLOWS


def test_job_restart_restarts_many_jobs_by_filter_or_serials(up: Installation) -> None:
    up.cli("import", *[str(TASK_TYPES / t) for t in ("Source", "Double", "Add")],
           str(WORKFLOWS / "Linear"))  # fmt: skip
    up.cli("workflow", "start", "Linear")
    for value in range(3):
        up.cli("run", "new", "Linear", "Source", "--outputs", json.dumps({"value": value}))
    first = up.status("Linear", "--wait")
    doubles = [run["jobs"]["Double"]["serial"] for run in first["runs"]]

    refused = up.cli("job", "restart", "--workflow", "Linear", check=False)
    assert refused.returncode == 1 and "--workflow needs --state" in refused.stderr

    out = up.cli("job", "restart", "--workflow", "Linear", "--state", "Done", "--task", "Double")
    assert "3 job(s) restarted, 0 skipped" in out.stdout, out.stdout
    second = up.status("Linear", "--wait")
    again = [run["jobs"]["Double"]["serial"] for run in second["runs"]]
    assert all(new > old for new, old in zip(again, doubles, strict=True))
    assert all(run["jobs"]["Add"]["state"] == "Done" for run in second["runs"])

    out = up.cli("job", "restart", str(again[0]), str(again[1]), str(doubles[2]))
    assert "2 job(s) restarted, 1 skipped" in out.stdout, out.stdout
    assert f"job {doubles[2]} skipped" in out.stdout and "Obsolete" in out.stdout


def test_status_says_why_a_reduce_has_no_job_yet(up: Installation) -> None:
    up.cli("import", *[str(TASK_TYPES / t) for t in ("Source", "Double", "Table")],
           str(WORKFLOWS / "Reduced"))  # fmt: skip
    up.cli("workflow", "start", "Reduced")
    up.cli("run", "new", "Reduced", "Source")  # its source job waits for a user
    up.cli("run", "new", "Reduced", "Source", "--outputs", json.dumps({"value": 1}))
    status = up.status("Reduced", "--wait")
    assert status["reduce_held"] == {"Table": "waiting for 1 run (Waiting: 1)"}
    shown = up.cli("status", "Reduced").stdout
    assert "reduce Table: waiting for 1 run (Waiting: 1)" in shown, shown


def test_a_flaky_script_is_retried_by_itself_and_done_at_the_third_attempt(
    up: Installation, tmp_path: Path
) -> None:
    counter = tmp_path / "runs.txt"
    inputs = [
        {"key": "value", "source": {"mode": "output", "task": "Source", "key": "value"}},
        {"key": "counter", "source": {"mode": "fixed", "fixed_value": str(counter)}},
        {"key": "failures", "source": {"mode": "fixed", "fixed_value": 2}},
    ]
    up.cli("import", *[str(TASK_TYPES / t) for t in ("Source", "Double", "Add", "Flaky")],
           str(WORKFLOWS / "Linear"))  # fmt: skip
    up.cli("task", "add", "Linear", "Flaky", "--type", "Test.Flaky", "--inputs", json.dumps(inputs))
    up.cli("workflow", "start", "Linear")
    up.cli("run", "new", "Linear", "Source", "--outputs", json.dumps({"value": 1}))
    flaky = up.status("Linear", "--wait")["runs"][0]["jobs"]["Flaky"]
    assert flaky["state"] == "Done" and flaky["outputs"] == {"value": 2}
    assert counter.read_text() == "3", "the script ran three times"
    third = up.job(flaky["serial"])
    assert third["metadata"]["retry"] == 2
    second = up.job(third["metadata"]["retry_of"])
    first = up.job(second["metadata"]["retry_of"])
    assert (second["state"], first["state"]) == ("Obsolete", "Obsolete")
    assert "run 1 fails on purpose" in first["error"] and "retry" not in first["metadata"]


def test_a_running_script_is_no_longer_shown_claimed_once_its_worker_says_so(
    up: Installation,
) -> None:
    up.cli("import", str(TASK_TYPES / "Source"), str(TASK_TYPES / "Sleep"),
           str(WORKFLOWS / "Sleepy"))  # fmt: skip
    up.cli("workflow", "start", "Sleepy")
    up.cli("run", "new", "Sleepy", "Source", "--outputs", json.dumps({"value": 600}))

    def running() -> dict[str, Any] | None:
        jobs = up.status("Sleepy")["runs"][0]["jobs"]
        sleep = jobs.get("Sleep", {})
        return sleep if sleep.get("state") == "Running" and "claimed" not in sleep else None

    job = wait_for(running, "the Sleep job running, its script started", timeout=60)
    shown = up.job(job["serial"])
    assert shown["claimed"] is False and shown["script_started_at"] is not None
    assert f"Running #{job['serial']}" in up.cli("status", "Sleepy").stdout
    up.cli("job", "abort", str(job["serial"]))
