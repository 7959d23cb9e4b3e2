"""A job's results in the runs table: a Done job's cell carries its numbers and which
output is an image or a table; an Image output's thumbnail (its middle z slice, small) is
rendered once and then read from the cache; a CSV output reads as a table with numbers."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from runyard.images import Image
from runyard.packages import folder_zip_bytes
from tests.integration.conftest import Server, error
from tests.integration.test_ui_study import read_png, upload

OUTPUTS = [
    {"key": "scan", "type": "Image"},
    {"key": "areas", "type": "CSV"},
    {"key": "mean", "type": "Float"},
    {"key": "count", "type": "Int"},
]
AREAS = "label;area;name\n2;10.5;b\n10;3;a\n1;;c\n"


def source_package(folder: Path, name: str, outputs: list[dict[str, str]]) -> bytes:
    """The package of task type ``name``: an interactive task whose jobs are created with
    their ``outputs`` (a source task)."""
    folder.mkdir()
    interface = {"kind": "interactive", "inputs": [], "outputs": outputs}
    metadata = {"package_format": "XFP-TT1.0", "name": name, "version": "1.0.0.0",
                "summary": "A source task: its jobs are created with their outputs.",
                "author": "Runyard tests", "dependencies": []}  # fmt: skip
    (folder / "interface.json").write_text(json.dumps(interface))
    (folder / "metadata.json").write_text(json.dumps(metadata))
    (folder / "main.py").write_text("from runyard import task\ntask.fail('not run')\n")
    return folder_zip_bytes(folder)


def scan_value(server: Server, folder: Path, pixels: np.ndarray[Any, Any]) -> dict[str, Any]:
    """An Image value of the file store holding ``pixels``."""
    saved = Image.from_array(pixels).save(folder / "scan.omni")
    omni, raw = upload(server, saved), upload(server, folder / "scan.raw")
    return {"type": "Image", "source": "filestore", "file_id": omni, "filename": "scan.omni",
            "raw_file_id": raw, "raw_filename": "scan.raw", "size": list(pixels.shape),
            "data_type": str(pixels.dtype)}  # fmt: skip


def measured(server: Server, tmp_path: Path) -> int:
    """The started workflow 'Measured' with one run whose Results job is Done: its serial."""
    client = server.client
    package = source_package(tmp_path / "tt", "Test.Results", OUTPUTS)
    client.post("/api/packages", content=package).raise_for_status()
    client.post("/api/workflows", json={"name": "Measured"}).raise_for_status()
    task = {"name": "Measure", "task_type": {"name": "Test.Results"}}
    client.post("/api/workflows/Measured/tasks", json=task).raise_for_status()
    client.post("/api/workflows/Measured/start").raise_for_status()
    pixels = np.zeros((300, 120, 5), dtype=np.int16)  # x, y, z
    pixels[:150, :, 2] = 1000  # the middle z slice: left half bright
    (tmp_path / "areas.csv").write_text(AREAS)
    areas = client.post("/api/files?filename=areas.csv", content=AREAS.encode()).json()
    outputs = {
        "scan": scan_value(server, tmp_path, pixels),
        "areas": areas | {"type": "CSV"},
        "mean": 2.5,
        "count": 7,
    }
    answer = client.post(
        "/api/workflows/Measured/runs", json={"task": "Measure", "outputs": outputs}
    )
    assert answer.status_code == 200, answer.text
    serial: int = answer.json()["serial"]
    return serial


def test_a_done_jobs_cell_names_its_image_tables_and_numbers(
    server: Server, tmp_path: Path
) -> None:
    serial = measured(server, tmp_path)
    page = server.client.get("/api/workflows/Measured/runs").json()
    cell = page["runs"][0]["jobs"]["Measure"]
    assert cell["serial"] == serial and cell["state"] == "Done"
    assert cell["image"] == "scan" and cell["tables"] == ["areas"]
    assert cell["numbers"] == {"mean": 2.5, "count": 7}


def test_a_thumbnail_is_the_middle_slice_made_small_and_rendered_once(
    server: Server, tmp_path: Path
) -> None:
    serial = measured(server, tmp_path)
    answer = server.client.get(f"/api/jobs/{serial}/thumbnail", params={"key": "scan"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/png"
    assert "max-age" in answer.headers["cache-control"]
    width, height, _, grey = read_png(answer.content)
    assert (width, height) == (75, 30)  # 300 x 120, every 4th pixel: at most 96 across
    assert (grey[:, :37] == 255).all() and (grey[:, 38:] == 0).all()  # slice z = 2

    file_id = server.client.get(f"/api/jobs/{serial}").json()["outputs"]["scan"]["file_id"]
    cached = server.ry.settings.data_dir / "thumbnails" / f"{file_id}-96.png"
    assert cached.read_bytes() == answer.content
    os.utime(cached, ns=(1_000_000_000, 1_000_000_000))  # a mark a new render would undo
    again = server.client.get(f"/api/jobs/{serial}/thumbnail", params={"key": "scan"})
    assert again.content == answer.content and again.headers["etag"] == answer.headers["etag"]
    assert cached.stat().st_mtime_ns == 1_000_000_000, "the second request rendered again"
    unchanged = server.client.get(
        f"/api/jobs/{serial}/thumbnail",
        params={"key": "scan"},
        headers={"if-none-match": answer.headers["etag"]},
    )
    assert unchanged.status_code == 304 and unchanged.content == b""


def test_a_thumbnail_of_no_image_or_of_an_unfinished_job_is_refused_clearly(
    server: Server, tmp_path: Path
) -> None:
    serial = measured(server, tmp_path)
    for key in ("areas", "nope"):
        answer = server.client.get(f"/api/jobs/{serial}/thumbnail", params={"key": key})
        assert answer.status_code == 404, answer.text
        assert "has no Image output" in error(answer)["message"] and "scan" in answer.text
    missing = server.client.get("/api/jobs/999999/thumbnail", params={"key": "scan"})
    assert missing.status_code == 404
    assert not (server.ry.settings.data_dir / "thumbnails").exists()


def test_a_csv_output_reads_as_a_table_with_numbers(server: Server, tmp_path: Path) -> None:
    serial = measured(server, tmp_path)
    answer = server.client.get(f"/api/jobs/{serial}/table", params={"key": "areas"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "columns": ["label", "area", "name"],
        "rows": [[2, 10.5, "b"], [10, 3, "a"], [1, "", "c"]],
        "numeric": [True, True, False],
        "truncated": False,
    }
    image = server.client.get(f"/api/jobs/{serial}/table", params={"key": "scan"})
    assert image.status_code == 404 and "has no CSV output 'scan'" in error(image)["message"]


def test_a_user_without_access_to_the_workflow_gets_no_thumbnail_or_table(
    server: Server, tmp_path: Path
) -> None:
    serial = measured(server, tmp_path)
    server.client.post(
        "/api/users", json={"name": "bob", "password": "a long password"}
    ).raise_for_status()
    token = server.client.post("/api/tokens", json={"label": "t", "user": "bob"}).json()
    bob = server.as_token(token["token"])
    for route, key in (("thumbnail", "scan"), ("table", "areas")):
        answer = server.client.get(f"/api/jobs/{serial}/{route}", params={"key": key}, headers=bob)
        assert answer.status_code in (403, 404), answer.text
    assert not (server.ry.settings.data_dir / "thumbnails").exists()


def test_a_user_data_images_thumbnail_is_made_again_when_the_image_changes(
    server: Server, tmp_path: Path
) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    Image.from_array(np.zeros((4, 3, 3), dtype=np.uint8)).save(folder / "s.omni")
    server.client.put(
        "/api/userdata/mappings", json={"root": "/Scans/", "folder": str(folder)}
    ).raise_for_status()
    client = server.client
    package = source_package(tmp_path / "tt", "Test.Scans", [{"key": "scan", "type": "Image"}])
    client.post("/api/packages", content=package).raise_for_status()
    client.post("/api/workflows", json={"name": "Scanned"}).raise_for_status()
    task = {"name": "Scan", "task_type": {"name": "Test.Scans"}}
    client.post("/api/workflows/Scanned/tasks", json=task).raise_for_status()
    client.post("/api/workflows/Scanned/start").raise_for_status()
    scan = {"type": "Image", "source": "userdata", "virtualpath": "/Scans/s.omni"}
    made = client.post(
        "/api/workflows/Scanned/runs", json={"task": "Scan", "outputs": {"scan": scan}}
    )
    serial = made.json()["serial"]
    first = client.get(f"/api/jobs/{serial}/thumbnail", params={"key": "scan"})
    assert first.status_code == 200, first.text
    assert read_png(first.content)[:2] == (4, 3)
    Image.from_array(np.zeros((6, 5, 3), dtype=np.uint8)).save(folder / "s.omni")
    second = client.get(f"/api/jobs/{serial}/thumbnail", params={"key": "scan"})
    assert read_png(second.content)[:2] == (6, 5)
    assert second.headers["etag"] != first.headers["etag"]
