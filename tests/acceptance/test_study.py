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
