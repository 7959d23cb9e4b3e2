"""Spawning as the XamFlow documentation's search script does (``find_xf_task_types``,
``spawn_xf_task_basic``, ``get_existing_job_sort_orders`` +
``xfsortorder.get_new_source_job_sort_orders``, ``spawn_xf_job_basic`` for new runs and, with
``source_job_serial``, for jobs joined to them; the select job created Obsolete and then
``xfworkerutil.update_xf_job(connection, job, state='Done')``): the runs appear after the
existing ones, with their names and entities; spawning again reuses the spawned tasks; a
follower of the spawned tasks starts only when its run is Done."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.compat.conftest import SOURCE, Lab

WORKFLOW = "Compat Spawn"
SUM_SOURCES = [
    {"key": "a", "source": {"mode": "output", "task": "Found", "key": "value"}},
    {"key": "b", "source": {"mode": "output", "task": "Added", "key": "value"}},
]


@pytest.fixture(scope="module")
def spawned(lab: Lab) -> dict[str, Any]:
    """Spawn 2 runs, add a follower "Sum" of the spawned tasks, spawn 3 more."""
    seen: dict[str, Any] = {}
    with lab.feature("spawn"):
        for name in (SOURCE, "Compat.Added", "Compat.Sum", "Compat.Spawn", "Workflow.Spawn"):
            lab.import_package(name)
        lab.start_workflow(WORKFLOW)
        lab.new_run(WORKFLOW, "Source", "search 2", {"value": 2})
        lab.wait()
        seen["first"] = lab.status(WORKFLOW)
        lab.installation.cli("task", "add", WORKFLOW, "Sum", "--type", "Compat.Sum",
                             "--inputs", json.dumps(SUM_SOURCES))  # fmt: skip
        lab.wait()
        lab.new_run(WORKFLOW, "Source", "search 3", {"value": 3})
        lab.wait()
    return seen


def spawned_runs(count: int) -> list[str]:
    return [f"spawned {count}.{i}" for i in range(count)]


def test_the_spawning_job_ends_done(lab: Lab, spawned: dict[str, Any]) -> None:
    lab.check("spawn")
    runs = lab.runs(WORKFLOW)
    assert lab.done(runs["search 2"].get("Spawn"), "Spawn 2") == {
        "spawned": 2,
        "select_versions": 1,
    }
    spawn = runs["search 3"].get("Spawn")
    assert lab.done(spawn, "Spawn 3")["spawned"] == 3
    assert "Spawning run for spawned 3.2" in lab.log(spawn["serial"])


def test_each_spawned_run_has_its_select_job_and_its_joined_add_job_done(
    lab: Lab, spawned: dict[str, Any]
) -> None:
    lab.check("spawn")
    runs = lab.runs(WORKFLOW)
    for count in (2, 3):
        for i, name in enumerate(spawned_runs(count)):
            assert name in runs, f"no run {name}; runs: {sorted(runs)}"
            jobs = runs[name]
            assert lab.done(jobs.get("Found"), f"{name}: Found") == {"value": i + 1}
            assert lab.done(jobs.get("Added"), f"{name}: Added") == {"value": 100 + i}
            added = lab.job(jobs["Added"]["serial"])
            assert added["inputs"] == {"value_template": None}
            assert added["run"]["id"] == lab.job(jobs["Found"]["serial"])["run"]["id"]


def test_spawned_runs_take_their_name_and_entity_from_the_metadata(
    lab: Lab, spawned: dict[str, Any]
) -> None:
    lab.check("spawn")
    runs = {run["name"]: run for run in lab.status(WORKFLOW)["runs"]}
    for name in spawned_runs(2) + spawned_runs(3):
        entity = runs[name]["entity"]
        assert entity is not None and entity["type"] == "Entity" and entity["name"] == name
        assert isinstance(entity["uuid"], str) and entity["uuid"]
        found = lab.job(runs[name]["jobs"]["Found"]["serial"])
        assert name in json.dumps(found["metadata"]), found["metadata"]


def test_spawned_runs_come_after_the_existing_ones_in_sort_order(
    lab: Lab, spawned: dict[str, Any]
) -> None:
    lab.check("spawn")
    names = [run["name"] for run in lab.status(WORKFLOW)["runs"]]
    assert names == ["search 2", *spawned_runs(2), "search 3", *spawned_runs(3)]


def test_spawning_again_reuses_the_spawned_tasks(lab: Lab, spawned: dict[str, Any]) -> None:
    lab.check("spawn")
    assert spawned["first"]["tasks"] == ["Source", "Spawn", "Found", "Added"]
    assert lab.status(WORKFLOW)["tasks"] == ["Source", "Spawn", "Found", "Added", "Sum"]


def test_a_follower_of_the_spawned_tasks_starts_only_when_the_run_is_done(
    lab: Lab, spawned: dict[str, Any]
) -> None:
    """The select job was created Obsolete and set Done after the add job joined its run: the
    follower's job comes after both, with both values."""
    lab.check("spawn")
    runs = lab.runs(WORKFLOW)
    for count in (2, 3):
        for i, name in enumerate(spawned_runs(count)):
            jobs = runs[name]
            assert lab.done(jobs.get("Sum"), f"{name}: Sum") == {"sum": (i + 1) + (100 + i)}
            assert jobs["Sum"]["serial"] > jobs["Added"]["serial"] > jobs["Found"]["serial"]
