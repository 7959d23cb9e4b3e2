"""The study table (a task's scalar outputs for every live run, JSON and CSV) and output
files as one zip (a job's, a column's, a selection's), through the HTTP API on SQLite and
PostgreSQL; who may read them."""

from __future__ import annotations

import csv
import io
import zipfile
from typing import Any

import pytest
import sqlalchemy as sa

from runyard.packages import folder_zip_bytes
from tests.conftest import TASK_TYPES, WORKFLOWS
from tests.integration.conftest import Server, error
from tests.integration.test_engine import run_all, worker_id
from tests.integration.test_study import cells, started


def weighed(server: Server, names: list[str]) -> dict[str, int]:
    """Runs of 'Factored' (Source -> Weigh) named ``names``, every Weigh job Done with the
    weight 1.5 x the run's number and the unit 'mm'; run name -> run id."""
    ry = started(server.ry, "Factored")
    for i, name in enumerate(names):
        ry.jobs.new_run("Factored", "Source", outputs={"value": i}, name=name)
    first = cells(ry, "Factored")[names[0]]["Weigh"]["serial"]
    ry.runs.submit(first, inputs={"factor": 1.5})
    for job, lease in ry.leases.claim(worker_id(ry), [], 100):
        outputs = {"weight": 1.5 * job.inputs["value"], "unit": "mm"}
        ry.leases.complete(job.serial, lease.lease_id, outputs)
    return {r["name"]: r["id"] for r in ry.workflows.status("Factored")["runs"]}


def test_the_study_table_lists_a_tasks_scalar_outputs_for_each_done_run(server: Server) -> None:
    runs = weighed(server, ["s1", "s2", "s3"])
    server.ry.jobs.new_run("Factored", "Source", outputs={"value": 9}, name="waiting")
    server.ry.runs.set_obsolete(runs["s2"], True)
    answer = server.client.get("/api/workflows/Factored/study-table", params={"task": "Weigh"})
    assert answer.status_code == 200, answer.text
    table = answer.json()
    assert table["task"] == "Weigh" and table["tasks"] == ["Source", "Weigh"]
    assert table["columns"] == [
        {"key": "weight", "type": "Float"},
        {"key": "unit", "type": "String"},
    ]
    assert [(r["run_id"], r["run"], r["values"]) for r in table["rows"]] == [
        (runs["s1"], "s1", [0.0, "mm"]),
        (runs["s3"], "s3", [3.0, "mm"]),
    ], "the obsolete run and the run whose Weigh job is not Done are left out"
    assert all(server.ry.jobs.get(r["serial"]).state == "Done" for r in table["rows"])
    default = server.client.get("/api/workflows/Factored/study-table").json()
    assert default["task"] == "Weigh", "without a task: the last one with scalar outputs"
    source = server.client.get("/api/workflows/Factored/study-table?task=Source").json()
    assert [r["values"] for r in source["rows"]] == [[0], [2], [9]]


def test_the_study_table_refuses_unknown_workflows_and_tasks_and_reduce_tasks(
    server: Server,
) -> None:
    started(server.ry, "Reduced")
    unknown = server.client.get("/api/workflows/Nope/study-table")
    assert unknown.status_code == 404 and "no workflow named 'Nope'" in error(unknown)["message"]
    no_task = server.client.get("/api/workflows/Reduced/study-table?task=Nope")
    assert no_task.status_code == 404 and "has no task named 'Nope'" in no_task.text
    reduce = server.client.get("/api/workflows/Reduced/study-table?task=Table")
    assert reduce.status_code == 422 and "is a reduce task" in error(reduce)["message"]
    bad_format = server.client.get("/api/workflows/Reduced/study-table?format=xls")
    assert bad_format.status_code == 422


def test_the_study_table_as_csv_has_a_header_and_quotes_what_needs_it(server: Server) -> None:
    names = ['a "quoted", name', "line\nbreak", "plain"]
    runs = weighed(server, names)
    answer = server.client.get("/api/workflows/Factored/study-table?task=Weigh&format=csv")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    assert answer.text.startswith("run_id,run,weight,unit\r\n")
    assert f'{runs[names[0]]},"a ""quoted"", name",0.0,mm\r\n' in answer.text
    rows = list(csv.reader(io.StringIO(answer.text, newline="")))
    assert rows == [
        ["run_id", "run", "weight", "unit"],
        *[[str(runs[n]), n, str(1.5 * i), "mm"] for i, n in enumerate(names)],
    ]


def test_reading_the_study_table_takes_as_many_statements_for_many_runs_as_for_few(
    server: Server,
) -> None:
    """One statement reads every run's outputs: none per run (what keeps it fast at
    100,000 runs; bench/study_table.py measures that)."""
    started(server.ry, "Linear")
    engine = server.ry.store.engine
    server.ry.study_table.table("Linear", "Add")  # the task list is read once, then cached
    seen: list[list[str]] = []
    for batch in (3, 40):
        for i in range(batch):
            server.ry.jobs.new_run("Linear", "Source", outputs={"value": i}, name=f"r{i}")
        run_all(server.ry, worker_id(server.ry))
        statements: list[str] = []

        def record(*args: Any, into: list[str] = statements) -> None:
            into.append(args[2])

        sa.event.listen(engine, "before_cursor_execute", record)
        try:
            table = server.ry.study_table.table("Linear", "Add")
        finally:
            sa.event.remove(engine, "before_cursor_execute", record)
        assert len(table["rows"]) == (3 if batch == 3 else 43)
        seen.append(statements)
    few, many = seen
    assert len(few) == len(many), (few, many)
    assert len([s for s in many if "FROM jobs" in s]) == 1, many


# -- zips -------------------------------------------------------------------------------------


def files_workflow(server: Server, contents: dict[str, list[tuple[str, bytes]]]) -> list[int]:
    """The started workflow 'Files' with a run per entry of ``contents`` (run name -> its
    Source file's name and bytes, as uploaded); the Source jobs' serials."""
    client = server.client
    for folder in [*sorted(TASK_TYPES.iterdir()), WORKFLOWS / "Files"]:
        client.post("/api/packages", content=folder_zip_bytes(folder)).raise_for_status()
    serials = []
    for run, files in contents.items():
        for filename, data in files:
            ref = client.post("/api/files", params={"filename": filename}, content=data).json()
            answer = client.post(
                "/api/workflows/Files/runs",
                json={"task": "Source", "outputs": {"file": ref}, "name": run},
            )
            answer.raise_for_status()
            serials.append(answer.json()["serial"])
    return serials


def unzipped(answer: Any) -> dict[str, bytes]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(answer.content)) as zf:
        assert zf.testzip() is None
        return {name: zf.read(name) for name in zf.namelist()}


def test_a_jobs_output_files_download_as_one_zip(server: Server) -> None:
    [serial] = files_workflow(server, {"scan 1": [("a.txt", b"alpha\n")]})
    answer = server.client.get(f"/api/jobs/{serial}/outputs.zip")
    assert unzipped(answer) == {"scan 1/Source/file/a.txt": b"alpha\n"}
    assert f"job-{serial}-outputs.zip" in answer.headers["content-disposition"]


def test_a_columns_files_download_as_one_zip_with_unique_names(server: Server) -> None:
    files_workflow(
        server,
        {
            "s/1": [("a.txt", b"one")],
            "same": [("b.txt", b"two"), ("b.txt", b"three")],
        },
    )
    answer = server.client.post(
        "/api/workflows/Files/outputs.zip", json={"task": "Source", "key": "file"}
    )
    assert unzipped(answer) == {
        "s_1/Source/file/a.txt": b"one",
        "same/Source/file/b.txt": b"two",
        "same/Source/file/b (2).txt": b"three",
    }, "a slash in a run name is no folder; two runs of one name keep both files"


def test_a_selection_of_jobs_downloads_as_one_zip(server: Server) -> None:
    serials = files_workflow(
        server, {"r1": [("x.bin", bytes(range(256)) * 10)], "r2": [("y.bin", b"y")]}
    )
    answer = server.client.post("/api/workflows/Files/outputs.zip", json={"serials": serials})
    assert unzipped(answer) == {
        "r1/Source/file/x.bin": bytes(range(256)) * 10,
        "r2/Source/file/y.bin": b"y",
    }


def test_empty_and_malformed_selections_are_refused_with_a_message(server: Server) -> None:
    files_workflow(server, {"r1": [("a.txt", b"a")]})
    started(server.ry, "Linear")
    no_files = server.ry.jobs.new_run("Linear", "Source", outputs={"value": 1}, name="n")
    path = "/api/workflows/Files/outputs.zip"
    for body, message in [
        ({"serials": []}, "the selection is empty"),
        ({"task": "Source"}, "name either a column"),
        ({"task": "Source", "key": "file", "serials": [1]}, "name either a column"),
    ]:
        answer = server.client.post(path, json=body)
        assert answer.status_code == 422 and message in error(answer)["message"], answer.text
    no_key = server.client.post(path, json={"task": "Source", "key": "nope"})
    assert no_key.status_code == 404 and "has no output 'nope'" in no_key.text
    empty = server.client.get(f"/api/jobs/{no_files.serial}/outputs.zip")
    assert empty.status_code == 422 and "has no output files" in error(empty)["message"]
    other = server.client.post(path, json={"serials": [no_files.serial]})
    assert other.status_code == 403 and "not of workflow 'Files'" in error(other)["message"]


@pytest.fixture
def users(server: Server) -> dict[str, dict[str, str]]:
    """viola may view 'Files', bob may not: their headers."""
    headers = {}
    for name in ("viola", "bob"):
        server.client.post(
            "/api/users", json={"name": name, "password": "a long password"}
        ).raise_for_status()
        token = server.client.post("/api/tokens", json={"label": "t", "user": name}).json()
        headers[name] = server.as_token(token["token"])
    return headers


def test_only_callers_who_may_read_the_files_get_them(
    server: Server, users: dict[str, dict[str, str]]
) -> None:
    [serial] = files_workflow(server, {"r1": [("a.txt", b"secret")]})
    server.client.put(
        "/api/workflows/Files/shares", json={"user": "viola", "level": "view"}
    ).raise_for_status()
    bob, viola = users["bob"], users["viola"]
    column = {"task": "Source", "key": "file"}
    for answer in [
        server.client.get("/api/workflows/Files/study-table", headers=bob),
        server.client.get(f"/api/jobs/{serial}/outputs.zip", headers=bob),
        server.client.post("/api/workflows/Files/outputs.zip", json=column, headers=bob),
    ]:
        assert answer.status_code == 404, answer.text
    assert server.client.get("/api/workflows/Files/study-table", headers=viola).status_code == 200
    # The Source file was uploaded by the admin, not by a job: only its uploader reads it,
    # as GET /api/files/{id} decides.
    refused = server.client.post("/api/workflows/Files/outputs.zip", json=column, headers=viola)
    assert refused.status_code == 403 and "you may not read 1 of the files" in refused.text
    job = server.client.get(f"/api/jobs/{serial}/outputs.zip", headers=viola)
    assert job.status_code == 403


def test_a_job_output_file_is_read_by_whoever_may_view_the_workflow(
    server: Server, users: dict[str, dict[str, str]]
) -> None:
    files_workflow(server, {"r1": [("a.txt", b"one line")]})
    server.ry.workflows.set_state("Files", "Started")
    [(job, lease)] = server.ry.leases.claim(worker_id(server.ry), [], 5)
    upload = server.ry.files.begin_upload("A.TXT")
    upload.write(b"ONE LINE")
    stored = server.ry.files.commit(upload, job_serial=job.serial)
    server.ry.leases.complete(job.serial, lease.lease_id, {"file": stored.reference(), "lines": 1})
    server.client.put(
        "/api/workflows/Files/shares", json={"user": "viola", "level": "view"}
    ).raise_for_status()
    column = {"task": "RoundTrip", "key": "file"}
    answer = server.client.post(
        "/api/workflows/Files/outputs.zip", json=column, headers=users["viola"]
    )
    assert unzipped(answer) == {"r1/RoundTrip/file/A.TXT": b"ONE LINE"}
    table = server.client.get(
        "/api/workflows/Files/study-table?task=RoundTrip", headers=users["viola"]
    ).json()
    assert table["columns"] == [{"key": "lines", "type": "Int"}]
    assert table["file_columns"] == [{"key": "file", "type": "ForeignFile"}]
    assert [r["values"] for r in table["rows"]] == [[1]]
