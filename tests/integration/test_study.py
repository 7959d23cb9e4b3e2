"""Operations on a running study, SQLite and PostgreSQL: run and job operations, interactive
jobs, editing and deleting tasks, stale results; through the operations and the HTTP API."""

from __future__ import annotations

import re
from typing import Any

import pytest

from runyard.errors import Conflict, InvalidInput, NotFound
from runyard.operations import Runyard
from runyard.packages import load_package
from tests.conftest import WORKFLOWS, install_test_task_types
from tests.integration.conftest import Server
from tests.integration.test_engine import run_all, worker_id


def started(ry: Runyard, *names: str) -> Runyard:
    install_test_task_types(ry)
    for name in names:
        ry.workflows.import_package(load_package(WORKFLOWS / name))  # type: ignore[arg-type]
        ry.workflows.set_state(name, "Started")
    return ry


def cells(ry: Runyard, workflow: str) -> dict[str, dict[str, Any]]:
    return {r["name"]: r["jobs"] for r in ry.workflows.status(workflow)["runs"]}


def test_run_operations_rename_copy_obsolete_restore(ry: Runyard) -> None:
    started(ry, "Linear")
    ry.jobs.new_run("Linear", "Source", outputs={"value": 4}, name="s1")
    run_all(ry, worker_id(ry))
    [run] = ry.workflows.status("Linear")["runs"]
    assert ry.runs.rename(run["id"], "sample 1").name == "sample 1"
    copy = ry.runs.copy(run["id"])
    assert copy.name == "sample 1 (copy)" and copy.sort_order > run["sort_order"]
    assert cells(ry, "Linear")["sample 1 (copy)"]["Double"]["state"] == "Queued"

    ry.runs.set_obsolete(copy.id, True)
    assert list(cells(ry, "Linear")) == ["sample 1"]
    assert ry.leases.claim(worker_id(ry), [], 5) == [], "an obsolete run's jobs do not start"
    for refused in (
        lambda: ry.runs.rename(copy.id, "x"),
        lambda: ry.runs.copy(copy.id),
        lambda: ry.runs.set_obsolete(copy.id, True),
    ):
        with pytest.raises(Conflict, match="obsolete"):
            refused()
    ry.runs.set_obsolete(copy.id, False)
    assert cells(ry, "Linear")["sample 1 (copy)"]["Double"]["state"] == "Queued"
    with pytest.raises(NotFound):
        ry.runs.rename(999, "x")
    with pytest.raises(InvalidInput, match="1 to 200 characters"):
        ry.runs.rename(run["id"], "   ")


def test_jobs_are_renamed_and_restarted_but_not_in_obsolete_runs(ry: Runyard) -> None:
    started(ry, "Linear")
    ry.jobs.new_run("Linear", "Source", outputs={"value": 1}, name="r")
    run_all(ry, worker_id(ry))
    double = cells(ry, "Linear")["r"]["Double"]["serial"]
    assert ry.runs.rename_job(double, "twice").metadata["display_name"] == "twice"
    new = ry.jobs.restart_new_job(double)
    jobs = cells(ry, "Linear")["r"]
    assert jobs["Double"]["serial"] == new.serial and "Add" not in jobs, "Add was obsoleted"
    [run] = ry.workflows.status("Linear")["runs"]
    ry.runs.set_obsolete(run["id"], True)
    with pytest.raises(Conflict, match="obsolete"):
        ry.jobs.restart_new_job(new.serial)


def test_interactive_inputs_are_checked_per_field_and_define_on_first_asks_once(
    ry: Runyard,
) -> None:
    started(ry, "Weighing")
    for i in range(2):
        ry.jobs.new_run("Weighing", "Source", outputs={"value": i + 1}, name=f"r{i}")
    first, second = (cells(ry, "Weighing")[f"r{i}"]["Weigh"] for i in range(2))
    assert first["state"] == second["state"] == "Waiting"

    with pytest.raises(InvalidInput) as refused:
        ry.runs.submit(
            first["serial"],
            inputs={"factor": 2.25, "unit": "cm", "measured": "2026-13-40", "value": 3},
        )
    errors = refused.value.details["errors"]
    assert errors == {
        "value": "not an input to give here; expected: factor, unit, measured",
        "factor": "must be a multiple of 0.5; found 2.25",
        "unit": 'must be one of "mm", "um"; found "cm"',
        "measured": 'must be a date (like 2026-11-26); found "2026-13-40"',
    }
    assert ry.jobs.get(first["serial"]).state == "Waiting", "nothing changed"

    job = ry.runs.submit(
        first["serial"], inputs={"factor": 2.5, "unit": "mm", "measured": "2026-11-26"}
    )
    assert (job.state, job.inputs["factor"]) == ("Queued", 2.5)
    [task] = [t for t in ry.workflows.get("Weighing")[1] if t.name == "Weigh"]
    assert task.input_source("factor").template == 2.5, "the first answer is the template"
    other = ry.jobs.get(second["serial"])
    assert other.state == "Waiting" and other.inputs["factor"] == 2.5, "asked no more for it"
    with pytest.raises(InvalidInput, match="factor: not an input to give here"):
        ry.runs.submit(second["serial"], inputs={"factor": 1.0, "unit": "um", "measured": "x"})
    ry.runs.submit(second["serial"], inputs={"unit": "um", "measured": "2026-11-27"})
    ry.jobs.new_run("Weighing", "Source", outputs={"value": 9}, name="later")
    later = cells(ry, "Weighing")["later"]["Weigh"]
    assert ry.jobs.get(later["serial"]).inputs["factor"] == 2.5
    with pytest.raises(Conflict, match="only a Waiting job"):
        ry.runs.submit(first["serial"], inputs={"unit": "mm"})


def test_define_on_first_alone_queues_the_submitted_job_and_every_waiting_one_once(
    ry: Runyard,
) -> None:
    started(ry, "Factored")
    for i in range(3):
        ry.jobs.new_run("Factored", "Source", outputs={"value": i + 1}, name=f"r{i}")
    weigh = [cells(ry, "Factored")[f"r{i}"]["Weigh"]["serial"] for i in range(3)]
    assert {ry.jobs.get(s).state for s in weigh} == {"Waiting"}

    job = ry.runs.submit(weigh[1], inputs={"factor": 2.5})
    assert (job.state, job.inputs["factor"]) == ("Queued", 2.5)
    for serial in weigh:
        other = ry.jobs.get(serial)
        assert (other.state, other.inputs["factor"]) == ("Queued", 2.5), serial
    claimed = ry.leases.claim(worker_id(ry), [], 10)
    assert sorted((j.serial, j.inputs["factor"]) for j, _ in claimed) == [(s, 2.5) for s in weigh]
    ry.jobs.new_run("Factored", "Source", outputs={"value": 4}, name="later")
    later = ry.jobs.get(cells(ry, "Factored")["later"]["Weigh"]["serial"])
    assert (later.state, later.inputs["factor"]) == ("Queued", 2.5), "the template answers"


def test_an_interactive_job_is_done_with_the_outputs_a_user_submits(ry: Runyard) -> None:
    started(ry, "Linear")
    source = ry.jobs.new_run("Linear", "Source", name="by hand")
    assert source.state == "Waiting"
    with pytest.raises(InvalidInput, match="value: must be a whole number"):
        ry.runs.submit(source.serial, outputs={"value": "three"})
    done = ry.runs.submit(source.serial, outputs={"value": 3})
    assert (done.state, done.outputs) == ("Done", {"value": 3})
    assert cells(ry, "Linear")["by hand"]["Double"]["state"] == "Queued"


def test_tasks_are_edited_and_deleted_only_while_the_workflow_is_stopped(ry: Runyard) -> None:
    started(ry, "Tuned")
    offset = [{"key": "value", "source": {"mode": "output", "task": "Source", "key": "value"}},
              {"key": "offset", "source": {"mode": "fixed", "fixed_value": 20}}]  # fmt: skip
    with pytest.raises(Conflict, match="is Started; tasks are edited while it is stopped"):
        ry.workflows.edit_task("Tuned", "Add", inputs=offset)
    ry.workflows.set_state("Tuned", "Draft")
    cyclic = [{"key": "value", "source": {"mode": "output", "task": "Double", "key": "value"}}]
    with pytest.raises(InvalidInput, match="cycle"):
        ry.workflows.edit_task("Tuned", "Add", inputs=cyclic)
    with pytest.raises(InvalidInput, match="fixed value must be a whole number"):
        ry.workflows.edit_task(
            "Tuned",
            "Add",
            inputs=[{"key": "offset", "source": {"mode": "fixed", "fixed_value": "x"}}],
        )
    assert ry.workflows.edit_task("Tuned", "Add", inputs=offset).inputs[1].source.fixed_value == 20
    with pytest.raises(Conflict, match=re.escape("tasks Double take inputs from Add")):
        ry.workflows.delete_task("Tuned", "Add")
    assert ry.workflows.delete_task("Tuned", "Add", followers=True) == ["Add", "Double"]
    assert [t.name for t in ry.workflows.get("Tuned")[1]] == ["Source"]


def test_a_changed_setting_makes_exactly_its_results_and_their_followers_stale(
    ry: Runyard,
) -> None:
    started(ry, "Tuned")
    for i in range(5):
        ry.jobs.new_run("Tuned", "Source", outputs={"value": i}, name=f"r{i}")
    run_all(ry, worker_id(ry))
    assert not any("stale" in c for jobs in cells(ry, "Tuned").values() for c in jobs.values())
    ry.workflows.set_state("Tuned", "Draft")
    ry.workflows.edit_task(
        "Tuned",
        "Add",
        inputs=[{"key": "value", "source": {"mode": "output", "task": "Source", "key": "value"}},
                {"key": "offset", "source": {"mode": "fixed", "fixed_value": 20}}],
    )  # fmt: skip
    ry.workflows.set_state("Tuned", "Started")
    runs = cells(ry, "Tuned")
    assert {jobs["Add"].get("stale") for jobs in runs.values()} == {"input offset: 10 -> 20"}
    assert {jobs["Double"].get("stale") for jobs in runs.values()} == {"upstream Add is stale"}
    assert not any("stale" in jobs["Source"] for jobs in runs.values())
    _, info = ry.runs.info(runs["r1"]["Add"]["serial"])
    assert info["stale"] == "input offset: 10 -> 20"
    assert info["provenance"]["task_type"] == {"name": "Test.Add", "version": "1.0.0.0"}
    assert info["provenance"]["inputs"] == {"value": 1, "offset": 10}

    assert ry.runs.rerun_stale("Tuned", "Double")["jobs"] == 5, "--task: only Double's"
    answer = ry.runs.rerun_stale("Tuned")
    # Add's 5; the Double jobs restarted above are Queued, not stale (Add's restart replaces
    # them as followers).
    assert (len(answer["restarted"]), answer["jobs"]) == (5, 5)
    run_all(ry, worker_id(ry))
    runs = cells(ry, "Tuned")
    assert not any("stale" in c for jobs in runs.values() for c in jobs.values())
    assert [runs[f"r{i}"]["Double"]["outputs"]["value"] for i in range(5)] == [
        2 * (i + 20) for i in range(5)
    ]
    assert ry.runs.rerun_stale("Tuned") == {"restarted": [], "jobs": 0}


def test_the_api_runs_the_study_operations(server: Server) -> None:
    ry = started(server.ry, "Linear")
    ry.jobs.new_run("Linear", "Source", outputs={"value": 2}, name="r")
    client = server.client
    [run] = client.get("/api/workflows/Linear/status").json()["runs"]
    assert client.put(f"/api/runs/{run['id']}/name", json={"name": "R"}).json()["name"] == "R"
    copied = client.post(f"/api/runs/{run['id']}/copy", json={}).json()
    assert copied["name"] == "R (copy)"
    assert client.post(f"/api/runs/{copied['id']}/obsolete").json()["obsolete"] is True
    again = client.post(f"/api/runs/{copied['id']}/obsolete")
    assert again.status_code == 409 and "obsolete already" in again.text
    assert client.post(f"/api/runs/{copied['id']}/restore").json()["obsolete"] is False
    source = client.post("/api/workflows/Linear/runs", json={"task": "Source"}).json()
    bad = client.post(f"/api/jobs/{source['serial']}/submit", json={"outputs": {"value": 1.5}})
    assert bad.status_code == 422
    assert bad.json()["error"]["details"]["errors"] == {
        "value": "must be a whole number (Int); found 1.5"
    }
    good = client.post(f"/api/jobs/{source['serial']}/submit", json={"outputs": {"value": 1}})
    assert good.json()["state"] == "Done"
    info = client.get(f"/api/jobs/{source['serial']}").json()
    assert info["task"] == "Source" and info["provenance"]["task_type"]["name"] == "Test.Source"
    stopped = client.put("/api/workflows/Linear/tasks/Add", json={"task_type_version": "1.0.0.0"})
    assert stopped.status_code == 409 and "stopped" in stopped.text
    client.post("/api/workflows/Linear/stop")
    deleted = client.delete("/api/workflows/Linear/tasks/Double", params={"followers": "true"})
    assert deleted.json() == {"deleted": ["Double", "Add"]}
    assert client.post("/api/workflows/Linear/rerun-stale", json={}).json()["jobs"] == 0
