"""Stale reduce jobs, SQLite and PostgreSQL: a reduce job that read stale results is stale
itself (and so is one whose own task was edited), and ``rerun-stale`` re-runs it."""

from __future__ import annotations

from typing import Any

import pytest

from runyard.cli.status import print_status_table
from runyard.operations import Runyard
from tests.integration.conftest import Server
from tests.integration.test_engine import worker_id
from tests.integration.test_study import started

DOUBLE_VALUES = {"key": "values", "source": {"mode": "output", "task": "Double", "key": "value"}}
SOURCE_VALUE = {"key": "value", "source": {"mode": "output", "task": "Source", "key": "value"}}


def finish_all(ry: Runyard) -> None:
    """Play a worker until nothing is left: Add (+offset), Double (x2), the reduce (sum)."""
    wid = worker_id(ry)
    while claimed := ry.leases.claim(wid, [], 20):
        for job, lease in claimed:
            inputs: dict[str, Any] = job.inputs
            if "values" in inputs:
                total = sum(inputs["values"])
                outputs = {"table": None, "count": len(inputs["values"]), "total": total}
            elif "offset" in inputs:
                outputs = {"value": inputs["value"] + inputs["offset"]}
            else:
                outputs = {"value": inputs["value"] * 2}
            ry.leases.complete(job.serial, lease.lease_id, outputs)


def tuned_with_a_table(ry: Runyard, runs: int) -> Runyard:
    """Tuned (Source -> Add +10 -> Double) with a reduce Table over Double, all Done."""
    started(ry, "Tuned")
    ry.workflows.add_task(
        "Tuned",
        "Table",
        task_type_name="Test.Table",
        inputs=[DOUBLE_VALUES, {"key": "title", "source": {"mode": "fixed", "fixed_value": "x"}}],
    )
    for i in range(runs):
        ry.jobs.new_run("Tuned", "Source", outputs={"value": i}, name=f"r{i}")
    finish_all(ry)
    return ry


def edit(ry: Runyard, task: str, inputs: list[dict[str, Any]]) -> None:
    ry.workflows.set_state("Tuned", "Draft")
    ry.workflows.edit_task("Tuned", task, inputs=inputs)
    ry.workflows.set_state("Tuned", "Started")


def test_a_reduce_job_that_read_stale_results_is_stale_and_rerun_stale_reruns_it(
    ry: Runyard, capsys: pytest.CaptureFixture[str]
) -> None:
    tuned_with_a_table(ry, 3)
    table = ry.workflows.status("Tuned")["reduce"]["Table"]
    assert table["state"] == "Done" and table["outputs"]["total"] == 2 * (10 + 11 + 12)
    assert "stale" not in table

    edit(ry, "Add", [SOURCE_VALUE, {"key": "offset", "source": {"mode": "fixed",
                                                              "fixed_value": 20}}])  # fmt: skip
    table = ry.workflows.status("Tuned")["reduce"]["Table"]
    assert table["stale"] == "upstream Double is stale in 3 runs"
    _, info = ry.runs.info(table["serial"])
    assert info["stale"] == "upstream Double is stale in 3 runs", "the job information too"
    print_status_table(ry.workflows.status("Tuned"))
    said = capsys.readouterr().out
    assert "Table: Done #" in said and "(stale)" in said
    assert "7 stale jobs" in said, "Add and Double in 3 runs, and the reduce"

    answer = ry.runs.rerun_stale("Tuned")
    assert answer["jobs"] == 3 + 3 + 1, "Add, Double and the reduce are re-run"
    finish_all(ry)
    status = ry.workflows.status("Tuned")
    table = status["reduce"]["Table"]
    assert table["state"] == "Done" and table["outputs"]["total"] == 2 * (20 + 21 + 22)
    assert "stale" not in table
    assert not any("stale" in cell for run in status["runs"] for cell in run["jobs"].values())


def test_a_reduce_job_whose_own_task_was_edited_is_stale_and_is_restarted(ry: Runyard) -> None:
    tuned_with_a_table(ry, 2)
    old = ry.workflows.status("Tuned")["reduce"]["Table"]
    title = {"key": "title", "source": {"mode": "fixed", "fixed_value": "y"}}
    edit(ry, "Table", [DOUBLE_VALUES, title])
    table = ry.workflows.status("Tuned")["reduce"]["Table"]
    assert table["stale"] == 'input title: "x" -> "y"'
    answer = ry.runs.rerun_stale("Tuned")
    assert answer["jobs"] == 1 and len(answer["restarted"]) == 1
    finish_all(ry)
    table = ry.workflows.status("Tuned")["reduce"]["Table"]
    assert table["serial"] > old["serial"] and "stale" not in table
    assert ry.jobs.get(table["serial"]).inputs["title"] == "y"


def test_a_reduce_held_back_by_pending_runs_says_how_many_and_in_which_states(
    server: Server,
) -> None:
    ry = started(server.ry, "Reduced")
    for i in range(3):
        ry.jobs.new_run("Reduced", "Source", outputs={"value": i}, name=f"r{i}")
    waiting = ry.jobs.new_run("Reduced", "Source", name="asks")  # Waiting for a user
    [(running, lease)] = ry.leases.claim(worker_id(ry), [], 1)
    why = "waiting for 4 runs (Waiting: 1, Queued: 2, Running: 1)"
    status = server.client.get("/api/workflows/Reduced/status").json()
    assert "Table" not in status["reduce"] and status["reduce_held"] == {"Table": why}
    page = server.client.get("/api/workflows/Reduced/runs").json()
    assert page["reduce_held"] == {"Table": why}, "the runs table's data too"

    ry.runs.submit(waiting.serial, outputs={"value": 5})
    ry.leases.complete(running.serial, lease.lease_id, {"value": 0})
    finish_all(ry)
    status = server.client.get("/api/workflows/Reduced/status").json()
    assert status["reduce_held"] == {} and status["reduce"]["Table"]["state"] == "Done"
    table = status["reduce"]["Table"]["serial"]
    assert "held_back" not in server.client.get(f"/api/jobs/{table}").json()

    ry.jobs.new_run("Reduced", "Source", outputs={"value": 9}, name="late")
    job = server.client.get(f"/api/jobs/{table}").json()
    assert job["held_back"] == "waiting for 1 run (Queued: 1)", "the Done reduce job says why"
