"""Acceptance: task scripts written with ``runyard.task``, run by the local worker of a real
``runyard up`` (SQLite and PostgreSQL): files in and out of the file store, progress, activity
messages, and output that is not valid text."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import httpx

from tests.acceptance.conftest import Installation
from tests.conftest import TASK_TYPES, WORKFLOWS


def url(up: Installation) -> str:
    address: str = json.loads((up.data_dir / "server.json").read_text())["url"]
    return address


def admin(up: Installation) -> dict[str, str]:
    token = (up.data_dir / "admin-token").read_text().strip()
    return {"Authorization": f"Bearer {token}"}


def get(up: Installation, path: str, **params: Any) -> httpx.Response:
    response = httpx.get(url(up) + path, params=params, headers=admin(up), timeout=30)
    assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text}"
    return response


def only_job(status: dict[str, Any], task: str) -> dict[str, Any]:
    [run] = status["runs"]
    job: dict[str, Any] = run["jobs"][task]
    return job


def test_a_script_downloads_its_input_file_and_uploads_a_derived_one(up: Installation) -> None:
    up.cli(
        "import",
        str(TASK_TYPES / "FileSource"),
        str(TASK_TYPES / "FileRoundTrip"),
        str(WORKFLOWS / "Files"),
    )
    up.cli("workflow", "start", "Files")
    text = "alpha\nbeta\ngamma é\n".encode()
    uploaded = httpx.post(
        url(up) + "/api/files",
        params={
            "filename": "input.txt",
            "size": len(text),
            "sha256": hashlib.sha256(text).hexdigest(),
        },
        content=text,
        headers=admin(up),
        timeout=30,
    )
    assert uploaded.status_code == 200, uploaded.text
    reference = uploaded.json()

    up.cli("run", "new", "Files", "Source", "--outputs", json.dumps({"file": reference}))
    status = up.status("Files", "--wait")
    job = only_job(status, "RoundTrip")
    assert job["state"] == "Done", job
    derived = job["outputs"]["file"]
    assert job["outputs"]["lines"] == 3
    assert derived["type"] == "ForeignFile" and derived["source"] == "filestore"
    assert derived["filename"] == "input.upper.txt"

    expected = "ALPHA\nBETA\nGAMMA É\n".encode()
    download = get(up, f"/api/files/{derived['file_id']}")
    assert download.content == expected
    assert download.headers["x-runyard-sha256"] == derived["sha256"]
    assert derived["sha256"] == hashlib.sha256(expected).hexdigest()
    assert derived["size"] == len(expected)

    serial = job["serial"]
    details = get(up, f"/api/jobs/{serial}").json()
    assert details["progress"] == {"fraction": 1.0, "message": "done"}
    activity = get(up, "/api/activity").json()
    assert any(
        e["actor"] == f"job {serial}" and e["message"] == "counted 3 lines in input.txt"
        for e in activity
    ), activity
    log = get(up, f"/api/jobs/{serial}/log").text
    assert f"downloaded input.txt ({len(text)} bytes)" in log
    assert f"uploaded input.upper.txt as {derived['file_id']}" in log


def test_output_that_is_not_utf8_becomes_text_with_replacement_characters(
    up: Installation,
) -> None:
    up.cli("import", str(TASK_TYPES / "Source"), str(TASK_TYPES / "NoisyLog"))
    up.cli("import", str(WORKFLOWS / "Noisy"))
    up.cli("workflow", "start", "Noisy")
    lines = 3000
    up.cli("run", "new", "Noisy", "Source", "--outputs", json.dumps({"value": lines}))
    job = only_job(up.status("Noisy", "--wait"), "Noisy")
    assert job["state"] == "Done", job

    raw = get(up, f"/api/jobs/{job['serial']}/log").content
    log = raw.decode("utf-8")  # strict: the log is valid text
    assert "start\n\ufffd\ufffd ok\nsplit: é\n" in log
    assert "to stderr\n" in log
    numbered = [line for line in log.splitlines() if line.startswith("line ")]
    assert numbered == [f"line {i}" for i in range(lines)]
    assert log.endswith("end\n")
    # Reading on from an offset gives the rest, in characters.
    middle = log.index("line 1500\n")
    assert get(up, f"/api/jobs/{job['serial']}/log", offset=middle).text == log[middle:]
