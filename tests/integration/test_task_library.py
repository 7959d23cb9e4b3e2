"""``runyard.task`` against the in-process server (SQLite and PostgreSQL): a script's calls
with its job token, and how it ends. The worker's variables are set as a worker sets them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from runyard import task
from runyard.client import Client, RemoteError
from tests.integration.conftest import RunningJob, Server, start_a_job


@dataclass
class Script:
    """A script's view of a running job: ``runyard.task`` set up as under a worker."""

    job: task.CurrentJob
    running: RunningJob
    workdir: Path
    server: Server

    def admin_upload(self, data: bytes, filename: str) -> dict[str, Any]:
        r = self.server.client.post("/api/files", params={"filename": filename}, content=data)
        r.raise_for_status()
        reference: dict[str, Any] = r.json()
        return reference

    def result(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.workdir / "result.json").read_text())
        return data


@pytest.fixture
def script(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Script]:
    running = start_a_job(server)
    workdir = tmp_path / "job-dir"
    workdir.mkdir()
    job_json = server.client.get(f"/api/jobs/{running.serial}").json()
    (workdir / "job.json").write_text(json.dumps(job_json))
    for name, value in {
        "RUNYARD_SERVER": "http://testserver",
        "RUNYARD_JOB_SERIAL": str(running.serial),
        "RUNYARD_JOB_TOKEN": running.job_token,
        "RUNYARD_JOB_FILE": str(workdir / "job.json"),
        "RUNYARD_RESULT_FILE": str(workdir / "result.json"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(workdir)
    monkeypatch.setattr(task, "_current", [])
    job = task.current_job()
    # The job's client, talking to the in-process server with the job token.
    client = Client(job.server, job.token)
    client._http.close()
    # starlette's TestClient is an httpx-compatible client of another package (httpx2).
    client._http = TestClient(server.client.app, headers=running.as_job)  # type: ignore[assignment]
    job.__dict__["_shared_client"] = client
    yield Script(job=job, running=running, workdir=workdir, server=server)
    client.close()


# -- the current job ----------------------------------------------------------------------


def test_current_job_reads_the_workers_variables(script: Script) -> None:
    job = script.job
    assert job.serial == script.running.serial
    assert job.inputs == {"value": 0} and job.metadata == {}
    assert job.server == "http://testserver" and job.token == script.running.job_token
    assert job.working_dir == script.workdir
    assert task.current_job() is job


def test_outside_a_job_current_job_says_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNYARD_JOB_SERIAL", raising=False)
    with pytest.raises(task.NotInAJob, match="RUNYARD_JOB_SERIAL is not set"):
        task.current_job()


def test_the_job_client_reads_its_own_job(script: Script) -> None:
    assert script.job.client().get(f"/api/jobs/{script.job.serial}")["state"] == "Running"


# -- files --------------------------------------------------------------------------------


def test_a_script_downloads_a_file_input_into_its_working_folder(script: Script) -> None:
    reference = script.admin_upload(b"scan data", "scan 1.raw")
    path = script.job.download(reference)
    assert path == script.workdir / "scan 1.raw" and path.read_bytes() == b"scan data"
    elsewhere = script.job.download(reference, script.workdir / "inputs" / "a")
    assert elsewhere == script.workdir / "inputs" / "a" / "scan 1.raw"
    assert elsewhere.read_bytes() == b"scan data"


def test_a_downloaded_file_never_lands_outside_the_target_folder(script: Script) -> None:
    reference = script.admin_upload(b"data", "plain.txt")
    for filename, saved_as in [
        ("../../evil.txt", "evil.txt"),
        ("/etc/passwd", "passwd"),
        ("..", reference["file_id"]),
        ("", reference["file_id"]),
    ]:
        path = script.job.download(reference | {"filename": filename})
        assert path == script.workdir / saved_as, filename
    assert path.read_bytes() == b"data"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (5, "download needs a file value like"),
        ({"type": "ForeignFile"}, "download needs a file value like"),
        ({"type": "ForeignFile", "source": "filestore"}, "the file value has no 'file_id'"),
        ({"type": "ForeignFile", "source": "ftp", "file_id": "x"}, "from source 'ftp' cannot"),
    ],
)
def test_downloading_something_that_is_not_a_file_says_so(
    script: Script, value: Any, problem: str
) -> None:
    with pytest.raises(task.TaskError, match=problem):
        script.job.download(value)


def test_a_failed_download_leaves_no_partial_file(script: Script) -> None:
    before = sorted(script.workdir.iterdir())
    missing = {"type": "ForeignFile", "source": "filestore", "file_id": "0" * 32, "filename": "x"}
    with pytest.raises(RemoteError) as caught:
        script.job.download(missing)
    assert caught.value.status_code == 404 and "no file" in caught.value.message
    assert sorted(script.workdir.iterdir()) == before


def test_a_script_uploads_an_output_file_recorded_with_its_job(script: Script) -> None:
    (script.workdir / "table.csv").write_text("a,b\n1,2\n")
    reference = script.job.upload("table.csv")
    assert reference["type"] == "ForeignFile" and reference["source"] == "filestore"
    assert reference["filename"] == "table.csv" and reference["size"] == 8
    assert reference["sha256"] == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    stored, path = script.server.ry.files.get(reference["file_id"])
    assert stored.job_serial == script.job.serial and path.read_text() == "a,b\n1,2\n"
    renamed = script.job.upload(script.workdir / "table.csv", "result.csv")
    assert renamed["filename"] == "result.csv"


def test_a_csv_value_is_a_file_value_of_type_csv(script: Script) -> None:
    (script.workdir / "areas.csv").write_text("slice,area\n1,12.5\n")
    value = script.job.upload("areas.csv", value_type="CSV")
    assert value["type"] == "CSV" and value["source"] == "filestore"
    copy = script.job.download(value, script.workdir / "copy")
    assert copy.read_text() == "slice,area\n1,12.5\n"
    with pytest.raises(task.TaskError, match="value_type must be one of ForeignFile, CSV"):
        script.job.upload("areas.csv", value_type="Image")


def test_uploading_a_missing_file_fails_before_any_call(script: Script) -> None:
    with pytest.raises(OSError):
        script.job.upload("no-such-file.csv")


# -- progress and activity ----------------------------------------------------------------


def test_a_script_reports_progress(script: Script) -> None:
    script.job.progress(0.5, "thresholding")
    job = script.server.client.get(f"/api/jobs/{script.job.serial}").json()
    assert job["progress"] == {"fraction": 0.5, "message": "thresholding"}
    script.job.progress(None, "waiting")
    job = script.server.client.get(f"/api/jobs/{script.job.serial}").json()
    assert job["progress"] == {"fraction": None, "message": "waiting"}


def test_progress_out_of_range_is_refused_by_the_library(script: Script) -> None:
    with pytest.raises(task.TaskError, match=r"between 0 and 1; got 1\.5"):
        script.job.progress(1.5)


def test_a_script_writes_to_the_activity_log(script: Script) -> None:
    script.job.activity("calibration missing; using the default", "warning")
    entries = script.server.client.get("/api/activity").json()
    [entry] = [e for e in entries if e["action"] == "job.message"]
    assert entry["actor"] == f"job {script.job.serial}" and entry["level"] == "warning"
    assert entry["message"] == "calibration missing; using the default"
    with pytest.raises(task.TaskError, match="activity level must be one of"):
        script.job.activity("x", "loud")


# -- ending the script --------------------------------------------------------------------


def test_finish_writes_the_outputs_and_exits_with_status_0(script: Script) -> None:
    with pytest.raises(SystemExit) as ended:
        task.finish({"value": 42, "note": "é"})
    assert ended.value.code == 0
    assert script.result() == {"outputs": {"value": 42, "note": "é"}}


def test_finish_without_outputs_finishes_with_none(script: Script) -> None:
    with pytest.raises(SystemExit):
        task.finish()
    assert script.result() == {"outputs": {}}


def test_fail_writes_the_message_and_exits_with_status_1(
    script: Script, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as ended:
        task.fail("the scan is empty: check the scanner")
    assert ended.value.code == 1
    assert script.result() == {"error": "the scan is empty: check the scanner"}
    assert "error: the scan is empty: check the scanner" in capsys.readouterr().err


def test_outputs_that_are_not_json_raise_and_write_no_result(script: Script) -> None:
    with pytest.raises(TypeError):
        task.finish({"value": object()})
    assert not (script.workdir / "result.json").exists()
