"""The workflow graph's layout (where each task is drawn), saved with the workflow through
the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from runyard.packages import folder_zip_bytes
from tests.conftest import TASK_TYPES, WORKFLOWS
from tests.integration.conftest import Server, start_jobs


@pytest.fixture
def linear(server: Server) -> None:
    for folder in [*sorted(TASK_TYPES.iterdir()), WORKFLOWS / "Linear"]:
        server.client.post("/api/packages", content=folder_zip_bytes(folder)).raise_for_status()


def test_a_saved_layout_is_part_of_the_workflow(server: Server, linear: None) -> None:
    assert server.client.get("/api/workflows/Linear").json()["layout"] is None
    positions = {"Source": {"x": 10, "y": 20.5}, "Add": {"x": 300, "y": -4}}
    answer = server.client.put("/api/workflows/Linear/layout", json={"positions": positions})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"positions": positions}
    assert server.client.get("/api/workflows/Linear").json()["layout"] == {"positions": positions}


def test_an_exported_workflow_package_carries_its_layout_to_the_import(
    server: Server, linear: None
) -> None:
    positions = {"Source": {"x": 10, "y": 20.5}, "Double": {"x": 200, "y": 20.5}}
    server.client.put("/api/workflows/Linear/layout", json={"positions": positions})
    exported = server.client.get("/api/workflows/Linear/export")
    assert exported.status_code == 200, exported.text
    with zipfile.ZipFile(io.BytesIO(exported.content)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    assert json.loads(files["layout.json"]) == {"positions": positions}
    metadata = json.loads(files["metadata.json"]) | {"name": "Linear copy"}
    files["metadata.json"] = json.dumps(metadata).encode()
    imported = server.client.post("/api/packages", content=zip_of(files))
    assert imported.status_code == 200, imported.text
    assert server.client.get("/api/workflows/Linear copy").json()["layout"] == {
        "positions": positions
    }


def zip_of(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_a_layout_naming_an_unknown_task_is_refused_and_changes_nothing(
    server: Server, linear: None
) -> None:
    saved = {"positions": {"Source": {"x": 1, "y": 2}}}
    assert server.client.put("/api/workflows/Linear/layout", json=saved).status_code == 200
    bad = {"positions": {"Source": {"x": 5, "y": 5}, "Nope": {"x": 0, "y": 0}}}
    answer = server.client.put("/api/workflows/Linear/layout", json=bad)
    assert answer.status_code == 422
    assert "has no task named 'Nope'" in answer.json()["error"]["message"]
    missing_y = {"positions": {"Source": {"x": 5}}}
    assert server.client.put("/api/workflows/Linear/layout", json=missing_y).status_code == 422
    assert server.client.get("/api/workflows/Linear").json()["layout"] == saved


def test_a_layout_of_an_unknown_workflow_is_not_found(server: Server) -> None:
    answer = server.client.put("/api/workflows/Nope/layout", json={"positions": {}})
    assert answer.status_code == 404 and "no workflow named 'Nope'" in answer.text


def test_task_counts_are_the_live_jobs_of_each_task_by_state(server: Server) -> None:
    start_jobs(server, 2)  # two runs of Linear, their Double jobs Running
    answer = server.client.get("/api/workflows/Linear/task-counts")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"tasks": {"Source": {"Done": 2}, "Double": {"Running": 2}, "Add": {}}}
