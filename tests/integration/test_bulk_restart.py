"""Restarting many jobs at once (POST /api/workflows/{name}/jobs/restart), SQLite and
PostgreSQL: by serials or by a filter of states, tasks and runs; skipped jobs and why;
refusals that change nothing."""

from __future__ import annotations

import threading
from typing import Any

from runyard.operations import Runyard
from runyard.operations.restarts import RestartChoice
from tests.integration.conftest import Server, error
from tests.integration.test_engine import worker_id
from tests.integration.test_study import cells, started

FAILED = {"states": ["Failed"]}


def fail_doubles(ry: Runyard, *values: int, prefix: str = "r") -> dict[str, int]:
    """Runs of Linear (one per value) whose Double job failed: {run name: Double serial}."""
    for value in values:
        ry.jobs.new_run("Linear", "Source", outputs={"value": value}, name=f"{prefix}{value}")
    wid = worker_id(ry)
    for job, lease in ry.leases.claim(wid, [], len(values)):
        ry.leases.fail(job.serial, lease.lease_id, "boom")
    return {name: jobs["Double"]["serial"] for name, jobs in cells(ry, "Linear").items()}


def restart(server: Server, body: dict[str, Any], workflow: str = "Linear") -> Any:
    return server.client.post(f"/api/workflows/{workflow}/jobs/restart", json=body)


def test_a_filter_restarts_every_failed_job_of_a_task_as_a_new_queued_job(server: Server) -> None:
    ry = started(server.ry, "Linear")
    failed = fail_doubles(ry, 1, 2, 3)
    answer = restart(server, {"filter": {"states": ["Failed"], "tasks": ["Double"]}})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["skipped"] == []
    assert sorted(r["serial"] for r in body["restarted"]) == sorted(failed.values())
    now = cells(ry, "Linear")
    for item in body["restarted"]:
        assert item["state"] == "Queued"
    assert {name: jobs["Double"]["serial"] for name, jobs in now.items()} == {
        name: next(r["new_serial"] for r in body["restarted"] if r["serial"] == serial)
        for name, serial in failed.items()
    }
    restarts = [a for a in ry.activity(50) if a["action"] == "job.restart"]
    assert len(restarts) == 3, "one activity entry per restarted job, as a single restart"


def test_a_filter_by_runs_restarts_only_those_runs(server: Server) -> None:
    ry = started(server.ry, "Linear")
    failed = fail_doubles(ry, 1, 2)
    run_ids = {r["name"]: r["id"] for r in ry.workflows.status("Linear")["runs"]}
    body = restart(server, {"filter": {"states": ["Failed"], "runs": [run_ids["r2"]]}}).json()
    assert [r["serial"] for r in body["restarted"]] == [failed["r2"]]
    assert cells(ry, "Linear")["r1"]["Double"]["state"] == "Failed"


def test_serials_restart_upstream_first_and_skip_what_cannot_be_restarted(server: Server) -> None:
    ry = started(server.ry, "Linear", "Reduced")
    ry.jobs.new_run("Linear", "Source", outputs={"value": 1}, name="a")
    ry.jobs.new_run("Linear", "Source", outputs={"value": 2}, name="b")
    wid = worker_id(ry)
    while claimed := ry.leases.claim(wid, [], 10):
        for job, lease in claimed:
            value = job.inputs["value"]
            if job.inputs.get("offset") is not None and value == 2:
                ry.leases.fail(job.serial, lease.lease_id, "boom")  # Add of run a: Failed
            elif "values" in job.inputs:
                ry.leases.complete(job.serial, lease.lease_id, {})
            else:
                ry.leases.complete(job.serial, lease.lease_id, {"value": value * 2})
    a, b = cells(ry, "Linear")["a"], cells(ry, "Linear")["b"]
    other = ry.jobs.new_run("Reduced", "Source", outputs={"value": 5})
    obsolete_first = ry.jobs.restart_new_job(b["Add"]["serial"])  # b's old Add is Obsolete
    assert obsolete_first.state == "Queued"
    # Named downstream first: a's Add is restarted after its Double, which makes it Obsolete.
    serials = [a["Add"]["serial"], a["Double"]["serial"], b["Add"]["serial"], other.serial, 99999]
    body = restart(server, {"serials": serials}).json()
    assert [r["serial"] for r in body["restarted"]] == [a["Double"]["serial"]]
    reasons = {s["serial"]: s["reason"] for s in body["skipped"]}
    assert set(reasons) == {a["Add"]["serial"], b["Add"]["serial"], other.serial, 99999}
    assert "restart of a job upstream of it" in reasons[a["Add"]["serial"]]
    assert "Obsolete" in reasons[b["Add"]["serial"]]
    assert "not in workflow 'Linear'" in reasons[other.serial]
    assert "no job with serial 99999" in reasons[99999]
    now = cells(ry, "Linear")["a"]
    assert now["Double"]["state"] == "Queued" and "Add" not in now


def test_a_job_that_is_refused_is_skipped_and_the_others_are_restarted(server: Server) -> None:
    ry = started(server.ry, "Linear")
    failed = fail_doubles(ry, 1, 2)
    run_ids = {r["name"]: r["id"] for r in ry.workflows.status("Linear")["runs"]}
    ry.runs.set_obsolete(run_ids["r1"], True)
    body = restart(server, {"serials": [failed["r1"], failed["r2"]]}).json()
    assert [r["serial"] for r in body["restarted"]] == [failed["r2"]]
    [skipped] = body["skipped"]
    assert skipped["serial"] == failed["r1"] and "obsolete" in skipped["reason"]
    assert ry.jobs.get(failed["r1"]).state == "Failed", "the skipped job is left as it was"


def test_bad_requests_are_refused_naming_the_problem_and_change_nothing(server: Server) -> None:
    ry = started(server.ry, "Linear")
    failed = fail_doubles(ry, 1)
    for body, status, words in [
        ({}, 422, "either"),
        ({"serials": [failed["r1"]], "filter": {"states": ["Failed"]}}, 422, "not both"),
        ({"filter": {}}, 422, 'needs "states"'),
        ({"filter": {"tasks": ["Double"]}}, 422, 'needs "states"'),
        ({"filter": {"states": ["Obsolete"]}}, 422, "cannot restart jobs by state Obsolete"),
        ({"filter": {"states": ["Failed"], "tasks": ["Nope"]}}, 404, "no task named 'Nope'"),
        ({"filter": {"states": ["Failed"], "runs": [424242]}}, 404, "no run with id 424242"),
        ({"serials": []}, 422, "empty"),
        ({"serials": list(range(1, 10_002))}, 422, "at most 10,000"),
    ]:
        answer = restart(server, body)
        assert answer.status_code == status, (body, answer.text)
        assert words in error(answer)["message"], (body, answer.text)
    assert restart(server, {"filter": {"states": ["Failed"]}}, workflow="Nope").status_code == 404
    assert cells(ry, "Linear")["r1"]["Double"]["serial"] == failed["r1"], "nothing restarted"


def test_a_batch_restart_racing_completions_of_other_runs_finishes_both(ry: Runyard) -> None:
    started(ry, "Linear")
    for i in range(30):
        ry.jobs.new_run("Linear", "Source", outputs={"value": i}, name=f"r{i:02}")
    wid = worker_id(ry)
    claimed = ry.leases.claim(wid, [], 30)
    for job, lease in claimed[::2]:
        ry.leases.fail(job.serial, lease.lease_id, "boom")
    running = claimed[1::2]
    errors: list[BaseException] = []
    answers: list[dict[str, Any]] = []

    def restart_failed() -> None:
        try:
            answers.append(ry.jobs.restart_jobs("Linear", RestartChoice.of(None, FAILED)))
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=restart_failed)
    thread.start()
    for job, lease in running:
        ry.leases.complete(job.serial, lease.lease_id, {"value": job.inputs["value"] * 2})
    thread.join(timeout=120)
    assert not errors and not thread.is_alive()
    [answer] = answers
    assert len(answer["restarted"]) == 15 and answer["skipped"] == []
    states = sorted(jobs["Double"]["state"] for jobs in cells(ry, "Linear").values())
    assert states == ["Done"] * 15 + ["Queued"] * 15
