"""Acceptance, on a real ``runyard up`` (SQLite and PostgreSQL) through the CLI: a reduce
task's table follows the study as runs are spawned and obsoleted; a changed setting makes
exactly its results and their followers stale, and ``rerun-stale`` re-runs exactly those."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx

from tests.acceptance.conftest import Installation
from tests.conftest import TASK_TYPES, WORKFLOWS

TWICE = [{"key": "values", "source": {"mode": "output", "task": "Twice", "key": "value"}}]


def table_rows(up: Installation, reduce: dict[str, Any]) -> list[list[str]]:
    """The rows of the CSV that the reduce job wrote (its header left out)."""
    file_id = reduce["outputs"]["table"]["file_id"]
    response = httpx.get(
        f"{up.url}/api/files/{file_id}",
        headers={"Authorization": f"Bearer {up.admin_token}"},
        timeout=30,
    )
    response.raise_for_status()
    header, *rows = csv.reader(io.StringIO(response.text))
    assert header == ["run", "value"]
    return rows


def spawn(up: Installation, count: int) -> dict[str, Any]:
    up.cli("run", "new", "Spawner", "Source", "--outputs", json.dumps({"value": count}))
    return up.status("Spawner", "--wait")


def test_a_reduce_table_follows_the_study(up: Installation) -> None:
    up.cli("import", *[str(TASK_TYPES / t) for t in ("Source", "XfSpawn", "Double", "Table")],
           str(WORKFLOWS / "Spawner"))  # fmt: skip
    up.cli("workflow", "start", "Spawner")
    spawn(up, 200)
    added = up.cli("task", "add", "Spawner", "Table", "--type", "Test.Table",
                   "--inputs", json.dumps(TWICE)).stdout  # fmt: skip
    assert "added task Table" in added
    status = up.status("Spawner", "--wait")
    first = status["reduce"]["Table"]
    assert first["state"] == "Done", up.cli("job", "log", str(first["serial"])).stdout
    rows = table_rows(up, first)
    assert len(rows) == 200 and rows[0] == ["spawned 0", "2"] and rows[-1][1] == "400"

    status = spawn(up, 50)
    second = status["reduce"]["Table"]
    assert second["state"] == "Done" and second["serial"] > first["serial"]
    assert len(table_rows(up, second)) == 250
    tables = [
        serial
        for serial in range(first["serial"], second["serial"] + 1)
        if up.job(serial)["task"] == "Table"
    ]
    assert tables == [first["serial"], second["serial"]], "exactly one new reduce job"
    assert up.job(first["serial"])["state"] == "Obsolete"

    gone = next(r for r in status["runs"] if r["name"] == "spawned 7")
    assert "obsolete" in up.cli("run", "obsolete", str(gone["id"])).stdout
    third = up.status("Spawner", "--wait")["reduce"]["Table"]
    rows = table_rows(up, third)
    assert len(rows) == 249 and rows.count(["spawned 7", "16"]) == 1, "one of two left"


def test_a_changed_setting_makes_its_results_stale_and_rerun_stale_redoes_them(
    up: Installation,
) -> None:
    up.cli("import", *[str(TASK_TYPES / t) for t in ("Source", "Add", "Double")],
           str(WORKFLOWS / "Tuned"))  # fmt: skip
    up.cli("workflow", "start", "Tuned")
    for value in range(100):
        up.api("POST", "/api/workflows/Tuned/runs",
               {"task": "Source", "outputs": {"value": value}, "name": f"r{value:03}"})  # fmt: skip
    up.status("Tuned", "--wait")

    up.cli("workflow", "stop", "Tuned")
    sources = [{"key": "value", "source": {"mode": "output", "task": "Source", "key": "value"}},
               {"key": "offset", "source": {"mode": "fixed", "fixed_value": 20}}]  # fmt: skip
    up.cli("task", "edit", "Tuned", "Add", "--inputs", json.dumps(sources))
    up.cli("workflow", "start", "Tuned")
    runs = up.status("Tuned")["runs"]
    stale = {
        task: sum("stale" in r["jobs"][task] for r in runs) for task in ("Source", "Add", "Double")
    }
    assert stale == {"Source": 0, "Add": 100, "Double": 100}
    shown = up.cli("status", "Tuned").stdout
    assert "200 stale jobs" in shown and "rerun-stale Tuned" in shown
    assert (
        "input offset: 10 -> 20"
        in up.cli("job", "show", str(runs[0]["jobs"]["Add"]["serial"])).stdout
    )

    assert "200 stale jobs re-run" in up.cli("workflow", "rerun-stale", "Tuned").stdout
    runs = up.status("Tuned", "--wait")["runs"]
    assert not any("stale" in job for r in runs for job in r["jobs"].values())
    assert [r["jobs"]["Double"]["outputs"]["value"] for r in runs] == [
        2 * (v + 20) for v in range(100)
    ]
    assert "0 stale jobs re-run" in up.cli("workflow", "rerun-stale", "Tuned").stdout


def test_run_job_and_task_operations_through_the_cli(up: Installation) -> None:
    up.cli("import", *[str(TASK_TYPES / t) for t in ("Source", "Double", "Add", "Weigh")],
           str(WORKFLOWS / "Linear"), str(WORKFLOWS / "Weighing"))  # fmt: skip
    for workflow in ("Linear", "Weighing"):
        up.cli("workflow", "start", workflow)
    up.cli("run", "new", "Linear", "Source", "--outputs", '{"value": 5}', "--name", "s1")
    [run] = up.status("Linear", "--wait")["runs"]
    rid = str(run["id"])
    assert "renamed" in up.cli("run", "rename", rid, "sample 1").stdout
    assert "created" in up.cli("run", "copy", rid, "--name", "sample 1b").stdout
    up.cli("run", "priority", rid, "high")
    up.cli("run", "obsolete", rid)
    refused = up.cli("run", "rename", rid, "x", check=False)
    assert refused.returncode == 1 and "is obsolete; restore it first" in refused.stderr
    up.cli("run", "restore", rid)
    runs = {r["name"]: r for r in up.status("Linear", "--wait")["runs"]}
    assert set(runs) == {"sample 1", "sample 1b"} and runs["sample 1"]["priority"] == "high"
    assert runs["sample 1b"]["jobs"]["Add"]["outputs"] == {"value": 20}

    add = str(runs["sample 1"]["jobs"]["Add"]["serial"])
    up.cli("job", "rename", add, "plus ten")
    restarted = up.cli("job", "restart", add).stdout
    assert f"job {add} restarted as job" in restarted
    shown = up.cli("job", "show", add).stdout
    assert "Obsolete" in shown and "computed by" in shown and "Test.Add 1.0.0.0" in shown

    up.cli("run", "new", "Weighing", "Source", "--outputs", '{"value": 4}', "--name", "w")
    weigh = str(up.status("Weighing")["runs"][0]["jobs"]["Weigh"]["serial"])
    bad = up.cli("job", "submit", weigh, "--inputs", '{"factor": 99, "unit": "mm"}', check=False)
    assert bad.returncode == 1
    assert "factor: must be at most 10; found 99" in bad.stderr
    assert "measured: a value is required" in bad.stderr
    good = '{"factor": 1.5, "unit": "mm", "measured": "2026-11-26"}'
    assert "Queued" in up.cli("job", "submit", weigh, "--inputs", good).stdout
    [weighed] = up.status("Weighing", "--wait")["runs"]
    assert weighed["jobs"]["Weigh"]["outputs"] == {"weight": 6.0, "unit": "mm"}

    running = up.cli("task", "delete", "Linear", "Double", check=False)
    assert running.returncode == 1 and "while it is stopped" in running.stderr
    up.cli("workflow", "stop", "Linear")
    assert "Add" in up.cli("task", "delete", "Linear", "Double", "--followers").stdout
    assert up.status("Linear")["tasks"] == ["Source"]
