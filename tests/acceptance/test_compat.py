"""Acceptance: a task script written against ``xfworkerutil`` only (tests/fixtures/task_types/
XfScale) runs unmodified on the real worker of ``runyard up``: inputs, log, activity log,
a CSV output uploaded and downloaded by the next task, an Entity output, task type lookup,
and ``worker.error`` ending a job Failed with its message."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import httpx

from tests.acceptance.conftest import Installation
from tests.conftest import TASK_TYPES, WORKFLOWS


def call(up: Installation, path: str) -> httpx.Response:
    """GET ``path`` from the server as the admin (the token of DATA_DIR/admin-token)."""
    url = json.loads((up.data_dir / "server.json").read_text())["url"]
    token = (up.data_dir / "admin-token").read_text().strip()
    response = httpx.get(url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert response.status_code == 200, response.text
    return response


def newer_version(tmp_path: Path) -> Path:
    """A copy of the XfScale task type as version 1.1.0.0."""
    folder = tmp_path / "XfScale-1.1"
    shutil.copytree(TASK_TYPES / "XfScale", folder)
    metadata = json.loads((folder / "metadata.json").read_text())
    (folder / "metadata.json").write_text(json.dumps(metadata | {"version": "1.1.0.0"}))
    return folder


def run_jobs(status: dict[str, Any], name: str) -> dict[str, Any]:
    runs = [r for r in status["runs"] if r["name"] == name]
    assert len(runs) == 1
    jobs: dict[str, Any] = runs[0]["jobs"]
    return jobs


def test_a_script_written_for_xfworkerutil_runs_unmodified(
    up: Installation, tmp_path: Path
) -> None:
    up.cli("import", str(TASK_TYPES / "Source"), str(TASK_TYPES / "XfScale"))
    up.cli("import", str(WORKFLOWS / "Compat"), str(newer_version(tmp_path)))
    up.cli("workflow", "start", "Compat")
    up.cli("run", "new", "Compat", "Source", "--outputs", '{"value": 4}', "--name", "good")
    up.cli("run", "new", "Compat", "Source", "--outputs", '{"value": -1}', "--name", "bad")
    status = up.status("Compat", "--wait")

    good = run_jobs(status, "good")
    assert {task: job["state"] for task, job in good.items()} == {
        "Source": "Done",
        "Scale": "Done",
        "Rescale": "Done",
    }
    scale = good["Scale"]["outputs"]
    assert scale["scaled"] == 12 and good["Rescale"]["outputs"]["scaled"] == 24
    assert scale["entity"] == {"type": "Entity", "uuid": "sample-4", "name": "Sample 4"}
    assert scale["versions"] == "1.1.0.0,1.0.0.0"  # all installed versions, newest first
    assert scale["related"] == "SAMPLE_seg.omni"
    assert scale["table"]["type"] == "CSV" and scale["table"]["filename"] == "scaled.csv"

    # Rescale downloaded Scale's CSV (download_input_file) and appended its row.
    table = good["Rescale"]["outputs"]["table"]
    assert table["type"] == "CSV" and table["source"] == "filestore"
    content = call(up, f"/api/files/{table['file_id']}").text
    assert content == "value,factor,scaled\n4,3,12\n12,2,24\n"

    serial = good["Scale"]["serial"]
    log = call(up, f"/api/jobs/{serial}/log").text
    assert f"job {serial}: scaling 4 by 3" in log
    assert "INFO: scaled to 12" in log  # logging reaches the job log
    assert "scratch folder removed: True" in log
    assert "HTTP Request" not in log, "the HTTP client's lines stay out of the job log"

    activity = call(up, "/api/activity").json()
    entries = [e for e in activity if e["message"] == "XfScale: 4 x 3 = 12"]
    assert len(entries) == 1
    assert entries[0]["level"] == "warning" and entries[0]["job_serial"] == serial

    bad = run_jobs(status, "bad")
    assert bad["Scale"]["state"] == "Failed" and "Rescale" not in bad
    assert bad["Scale"]["error"].startswith("value must not be negative; got -1")


def test_a_script_spawns_runs_through_xfworkerutil_and_their_followers_run(
    up: Installation,
) -> None:
    """tests/fixtures/task_types/XfSpawn spawns as the seed's search script does: 3 runs of
    2 jobs (the select job Obsolete, the add job in its run, then the select job Done), and a
    follower task connected to the spawned select task gets one job per run."""
    up.cli(
        "import",
        str(TASK_TYPES / "Source"),
        str(TASK_TYPES / "Double"),
        str(TASK_TYPES / "XfSpawn"),
        str(WORKFLOWS / "Spawner"),
    )
    up.cli("workflow", "start", "Spawner")
    up.cli("run", "new", "Spawner", "Source", "--outputs", '{"value": 3}', "--name", "search")
    status = up.status("Spawner", "--wait")

    search = run_jobs(status, "search")
    assert search["Spawn"]["state"] == "Done", search["Spawn"]
    assert search["Spawn"]["outputs"] == {"spawned": 3}
    for i in range(3):
        jobs = run_jobs(status, f"spawned {i}")
        assert {task: job["state"] for task, job in jobs.items()} == {
            "Found": "Done",
            "Added": "Done",
            "Twice": "Done",
        }
        assert jobs["Added"]["outputs"] == {"value": 100 + i}
        assert jobs["Twice"]["outputs"] == {"value": 2 * (i + 1)}
    names = [run["name"] for run in status["runs"]]
    assert names == ["search", "spawned 0", "spawned 1", "spawned 2"]  # in sort order
    log = call(up, f"/api/jobs/{search['Spawn']['serial']}/log").text
    assert "INFO: Spawning run for spawned 2" in log
