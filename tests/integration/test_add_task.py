"""Adding a task to a workflow (API and operations), and the built-in task types, on SQLite
and PostgreSQL."""

from __future__ import annotations

import re

import pytest

from runyard.errors import Conflict, InvalidInput, NotFound
from runyard.operations import Runyard
from tests.integration.conftest import Server
from tests.integration.test_engine import live_jobs, run_all, worker_id

DOUBLE_OF_ADD = [{"key": "value", "source": {"mode": "output", "task": "Add", "key": "value"}}]


def test_an_added_task_gets_a_job_in_every_run_whose_upstream_is_done(linear: Runyard) -> None:
    for i in range(3):
        linear.jobs.new_run("Linear", "Source", outputs={"value": i}, name=f"r{i}")
    run_all(linear, worker_id(linear))
    linear.jobs.new_run("Linear", "Source", outputs={"value": 9}, name="pending")

    task, created = linear.workflows.add_task(
        "Linear", "Again", task_type_name="Test.Double", inputs=DOUBLE_OF_ADD
    )
    assert task.name == "Again" and task.upstream_names() == {"Add"}
    assert created == 3  # not "pending": its Add job is not Done yet
    runs = live_jobs(linear)
    assert {name: jobs["Again"]["state"] for name, jobs in runs.items() if "Again" in jobs} == {
        "r0": "Queued",
        "r1": "Queued",
        "r2": "Queued",
    }
    run_all(linear, worker_id(linear))  # the pending run now reaches Again as a follower
    runs = live_jobs(linear)
    assert runs["pending"]["Again"]["outputs"] == {"value": 2 * (2 * 9 + 10)}
    assert [runs[f"r{i}"]["Again"]["outputs"]["value"] for i in range(3)] == [20, 24, 28]


def test_adding_a_task_refuses_bad_requests_and_changes_nothing(linear: Runyard) -> None:
    linear.jobs.new_run("Linear", "Source", outputs={"value": 1})
    before = linear.workflows.get("Linear")[1]
    cases: list[tuple[type[Exception], dict[str, object], str]] = [
        (Conflict, {"name": "Add", "task_type_name": "Test.Double"}, "has a task named 'Add'"),
        (NotFound, {"name": "X", "task_type_name": "No.Such"}, "'No.Such' (any version)"),
        (
            InvalidInput,
            {
                "name": "X",
                "task_type_name": "Test.Double",
                "inputs": [{"key": "value", "source": {"mode": "output", "task": "Nope"}}],
            },
            "names task 'Nope'",
        ),
        (
            InvalidInput,
            {"name": "X", "task_type_name": "Test.Double", "inputs": [{"key": "nope"}]},
            "has no input 'nope'",
        ),
    ]
    for error, args, message in cases:
        with pytest.raises(error, match=re.escape(message)):
            linear.workflows.add_task("Linear", **args)  # type: ignore[arg-type]
    linear.workflows.set_locked("Linear", True)
    with pytest.raises(Conflict, match="is locked"):
        linear.workflows.add_task("Linear", "X", task_type_name="Test.Double", inputs=DOUBLE_OF_ADD)
    assert linear.workflows.get("Linear")[1] == before


def test_the_api_adds_a_task(server: Server) -> None:
    from tests.integration.conftest import start_jobs

    start_jobs(server, 1)
    answer = server.client.post(
        "/api/workflows/Linear/tasks",
        json={"name": "Again", "task_type": {"name": "Test.Double"}, "inputs": DOUBLE_OF_ADD},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["jobs_created"] == 0 and answer.json()["name"] == "Again"
    again = server.client.post(
        "/api/workflows/Linear/tasks",
        json={"name": "Again", "task_type": {"name": "Test.Double"}, "inputs": DOUBLE_OF_ADD},
    )
    assert again.status_code == 409 and "has a task named 'Again'" in again.text
    tasks = server.client.get("/api/workflows/Linear").json()["tasks"]
    assert [t["name"] for t in tasks] == ["Source", "Double", "Add", "Again"]


def test_built_in_task_types_install_once_and_again_without_change(ry: Runyard) -> None:
    first = ry.task_types.install_builtin()
    names = {tt.name for tt in first}
    assert names == {
        "Lucid.Util.SearchFolderFilesBySuffix",
        "Lucid.Util.RelativeUserDataImage",
        "XF.Data.SelectFolder",
        "XF.Data.SelectForeignFile",
        "XF.Data.AddForeignFile",
        "XF.Data.SelectImage",
        "XF.Data.AddImage",
        "Runyard.Image.Threshold",
        "Runyard.Image.Statistics",
        "Runyard.Image.StudyTable",
        "Lucid.Core.Threshold",
        "Lucid.CLIP.StatMinMax",
    }
    assert ry.task_types.install_builtin() == first  # a second start changes nothing
    [search] = ry.task_types.find("Lucid.Util.SearchFolderFilesBySuffix")
    assert [p.key for p in search.interface.inputs] == ["folder", "suffixes", "mode", "typename"]
    [add] = ry.task_types.find("XF.Data.AddForeignFile")
    assert add.interface.kind == "interactive"
    assert [p.key for p in add.interface.inputs] == ["foreign_file_template"]
    assert [p.key for p in add.interface.outputs] == ["foreign_file"]
