"""The endpoints of the web UI's second part: creating an empty workflow, stale cells and
``Worker missing`` in the runs table's pages, a job's history, and image slices as PNG."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from runyard.images import Image
from runyard.packages import folder_zip_bytes, load_package
from tests.conftest import TASK_TYPES, WORKFLOWS, install_test_task_types
from tests.integration.conftest import Server
from tests.integration.test_engine import run_all, worker_id


def install(server: Server, *workflows: str) -> None:
    for folder in [*sorted(TASK_TYPES.iterdir()), *(WORKFLOWS / w for w in workflows)]:
        server.client.post("/api/packages", content=folder_zip_bytes(folder)).raise_for_status()


def first_run(server: Server, workflow: str) -> dict[str, Any]:
    answer = server.client.get(f"/api/workflows/{workflow}/runs")
    assert answer.status_code == 200, answer.text
    data: dict[str, Any] = answer.json()
    return data


def test_create_an_empty_draft_workflow_then_add_a_task(server: Server) -> None:
    install(server)
    made = server.client.post("/api/workflows", json={"name": "Fresh", "remarks": "*new*"})
    assert made.status_code == 200, made.text
    assert made.json() | {"created_at": None} == {
        "name": "Fresh",
        "state": "Draft",
        "locked": False,
        "remarks": "*new*",
        "created_at": None,
        "tasks": [],
    }
    added = server.client.post(
        "/api/workflows/Fresh/tasks", json={"name": "Source", "task_type": {"name": "Test.Source"}}
    )
    assert added.status_code == 200, added.text
    assert [t["name"] for t in server.client.get("/api/workflows/Fresh").json()["tasks"]] == [
        "Source"
    ]
    activity = server.client.get("/api/activity").json()
    assert any(e["action"] == "workflow.create" for e in activity)


def test_a_duplicate_or_bad_workflow_name_is_refused_clearly(server: Server) -> None:
    server.client.post("/api/workflows", json={"name": "Fresh"}).raise_for_status()
    again = server.client.post("/api/workflows", json={"name": "Fresh"})
    assert again.status_code == 409 and "exists already" in again.json()["error"]["message"]
    for bad in ("a/b", " padded", "tab\there", ""):
        answer = server.client.post("/api/workflows", json={"name": bad})
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.json()["error"]["code"] == "invalid_input"


def test_creating_a_workflow_with_the_session_needs_the_csrf_token(server: Server) -> None:
    token = server.client.headers.pop("Authorization").split()[1]
    login = server.client.post("/ui/login", json={"token": token})
    csrf = login.json()["csrf"]
    refused = server.client.post("/api/workflows", json={"name": "Nope"})
    assert refused.status_code == 403
    made = server.client.post(
        "/api/workflows", json={"name": "Yes"}, headers={"X-Runyard-CSRF": csrf}
    )
    assert made.status_code == 200, made.text


def test_queued_jobs_no_worker_can_run_show_the_missing_packages(server: Server) -> None:
    install(server, "Tools")
    server.client.post("/api/workflows/Tools/start").raise_for_status()
    server.client.post(
        "/api/workflows/Tools/runs", json={"task": "Source", "outputs": {"value": 1}}
    ).raise_for_status()
    page = first_run(server, "Tools")
    # No worker at all: nothing can run anything.
    assert page["worker_missing"] == {"Plain": [], "Source": [], "Tool": ["Tool.A"]}
    assert page["runs"][0]["jobs"]["Tool"]["worker_missing"] == ["Tool.A"]
    token = server.client.post("/api/tokens/worker", json={"name": "w1"}).json()["token"]
    server.client.post(
        "/api/workers/register", json={"name": "w1", "max_jobs": 1}, headers=server.as_token(token)
    ).raise_for_status()
    page = first_run(server, "Tools")
    assert page["worker_missing"] == {"Tool": ["Tool.A"]}
    jobs = page["runs"][0]["jobs"]
    assert "worker_missing" not in jobs["Plain"] and jobs["Tool"]["worker_missing"] == ["Tool.A"]
    server.client.post(
        "/api/workers/register",
        json={"name": "w1", "max_jobs": 1, "provides": ["Tool.A"]},
        headers=server.as_token(token),
    ).raise_for_status()
    assert first_run(server, "Tools")["worker_missing"] == {}


def test_stale_cells_carry_their_reason(server: Server) -> None:
    ry = server.ry
    install_test_task_types(ry)
    ry.workflows.import_package(load_package(WORKFLOWS / "Tuned"))  # type: ignore[arg-type]
    ry.workflows.set_state("Tuned", "Started")
    ry.jobs.new_run("Tuned", "Source", outputs={"value": 1}, name="r")
    run_all(ry, worker_id(ry))
    assert not any("stale" in c for c in first_run(server, "Tuned")["runs"][0]["jobs"].values())
    ry.workflows.set_state("Tuned", "Draft")
    ry.workflows.edit_task(
        "Tuned",
        "Add",
        inputs=[{"key": "value", "source": {"mode": "output", "task": "Source", "key": "value"}},
                {"key": "offset", "source": {"mode": "fixed", "fixed_value": 20}}],
    )  # fmt: skip
    jobs = first_run(server, "Tuned")["runs"][0]["jobs"]
    assert {task: c.get("stale") for task, c in jobs.items()} == {
        "Source": None,
        "Add": "input offset: 10 -> 20",
        "Double": "upstream Add is stale",
    }


def test_job_history_has_its_timings_and_activity(server: Server) -> None:
    install(server, "Linear")
    server.client.post("/api/workflows/Linear/start").raise_for_status()
    job = server.client.post(
        "/api/workflows/Linear/runs", json={"task": "Source", "outputs": {"value": 1}}
    ).json()
    double = first_run(server, "Linear")["runs"][0]["jobs"]["Double"]["serial"]
    server.client.post(f"/api/jobs/{double}/state", json={"state": "Aborted"}).raise_for_status()
    history = server.client.get(f"/api/jobs/{double}/history").json()
    assert [e["what"] for e in history] == ["created", "job.state"]
    assert "Queued -> Aborted" in history[1]["message"]
    source = server.client.get(f"/api/jobs/{job['serial']}/history").json()
    assert source[0]["what"] == "created" and any(e["what"] == "run.new" for e in source)
    assert server.client.get("/api/jobs/999999/history").status_code == 404


def read_png(data: bytes) -> tuple[int, int, int, np.ndarray[Any, Any]]:
    """width, height, colour type and the pixels of an 8-bit PNG without filters."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, idat, header = 8, b"", b""
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        crc = struct.unpack(">I", data[position + 8 + length : position + 12 + length])[0]
        assert zlib.crc32(kind + body) & 0xFFFFFFFF == crc
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    width, height, depth, colour, *_ = struct.unpack(">IIBBBBB", header)
    channels = {0: 1, 6: 4}[colour]
    rows = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(height, -1)
    assert depth == 8 and (rows[:, 0] == 0).all()
    pixels = rows[:, 1:].reshape(height, width, channels).squeeze()
    return width, height, colour, pixels


def upload(server: Server, path: Path) -> str:
    answer = server.client.post(f"/api/files?filename={path.name}", content=path.read_bytes())
    assert answer.status_code == 200, answer.text
    file_id: str = answer.json()["file_id"]
    return file_id


def test_image_slices_are_pngs_cut_from_the_stored_pixels(server: Server, tmp_path: Path) -> None:
    pixels = np.zeros((6, 4, 3), dtype=np.int16)  # x, y, z
    pixels[:, :, 1] = np.arange(6)[:, np.newaxis] * 100  # ramp along x in slice z=1
    pixels[2, 3, 2] = 500
    saved = Image.from_array(pixels).save(tmp_path / "ramp.omni")
    omni, raw = upload(server, saved), upload(server, tmp_path / "ramp.raw")
    query = {"file_id": omni, "raw_file_id": raw}
    info = server.client.get("/api/images/info", params=query).json()
    assert info["size"] == [6, 4, 3] and info["data_type"] == "int16"
    answer = server.client.get(
        "/api/images/slice", params=query | {"axis": "z", "index": 1, "window": 500, "level": 250}
    )
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    width, height, colour, grey = read_png(answer.content)
    assert (width, height, colour) == (6, 4, 0)
    assert grey[0].tolist() == [0, 51, 102, 153, 204, 255]  # 0..500 through the window
    assert (grey == grey[0]).all()
    across_x = server.client.get("/api/images/slice", params=query | {"axis": "x", "index": 2})
    assert read_png(across_x.content)[:2] == (4, 3)  # y columns, z rows
    mask = server.client.get(
        "/api/images/slice", params=query | {"axis": "z", "index": 2, "overlay": "true"}
    )
    _, _, colour, rgba = read_png(mask.content)
    assert colour == 6 and rgba[3, 2, 3] > 0 and rgba[0, 0, 3] == 0
    for bad in ({"axis": "w"}, {"axis": "z", "index": 3}, {"window": 0, "level": 1}):
        refused = server.client.get("/api/images/slice", params=query | bad)
        assert refused.status_code == 422, (bad, refused.text)
    assert server.client.get("/api/images/slice", params={"axis": "z"}).status_code == 422


def test_image_slices_of_user_data_images(server: Server, tmp_path: Path) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    Image.from_array(np.arange(24, dtype=np.uint8).reshape(2, 3, 4)).save(folder / "s.omni")
    server.client.put(
        "/api/userdata/mappings", json={"root": "/Scans/", "folder": str(folder)}
    ).raise_for_status()
    answer = server.client.get(
        "/api/images/slice", params={"path": "/Scans/s.omni", "axis": "y", "index": 1}
    )
    assert answer.status_code == 200, answer.text
    assert read_png(answer.content)[:2] == (2, 4)
    outside = server.client.get("/api/images/slice", params={"path": "/Other/s.omni"})
    assert outside.status_code in (403, 404)
