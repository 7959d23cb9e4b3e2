"""Purge through the HTTP API, SQLite and PostgreSQL: obsolete runs and jobs and the files
that only they used are removed; a dry run changes nothing; a file that a remaining job
refers to is never removed; only admins may purge."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from runyard.cli import app
from runyard.client import Client
from runyard.errors import Conflict
from runyard.operations import Runyard
from runyard.operations.base import utcnow
from runyard.operations.purge import PurgeManager
from runyard.packages import folder_zip_bytes
from runyard.store.schema import files, jobs, runs, workflows
from tests.conftest import TASK_TYPES, WORKFLOWS
from tests.integration.conftest import Server, error, start_a_job

DAY = 24 * 3600


def upload(server: Server, data: bytes, name: str, headers: Any = None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "filename": name,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    r = server.client.post("/api/files", params=params, content=data, headers=headers)
    assert r.status_code == 200, r.text
    reference: dict[str, Any] = r.json()
    return reference


def new_run(server: Server, name: str, file: dict[str, Any], workflow: str = "Files") -> int:
    r = server.client.post(
        f"/api/workflows/{workflow}/runs",
        json={"task": "Source", "outputs": {"file": file}, "name": name},
    )
    assert r.status_code == 200, r.text
    run_id: int = r.json()["run_id"]
    return run_id


def purge(server: Server, **body: Any) -> dict[str, Any]:
    r = server.client.post("/api/purge", json={"dry_run": False} | body)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def on_disk(ry: Runyard, file: dict[str, Any]) -> bool:
    return ry.files.path_of(file["file_id"]).is_file()


def recorded(ry: Runyard, file: dict[str, Any]) -> bool:
    with ry.store.read() as conn:
        found = conn.execute(sa.select(files.c.id).where(files.c.id == file["file_id"]))
        return found.first() is not None


def kept(ry: Runyard, file: dict[str, Any]) -> bool:
    """Recorded and on disk; a removed file is neither."""
    assert recorded(ry, file) == on_disk(ry, file), file
    return on_disk(ry, file)


def age_file(ry: Runyard, file: dict[str, Any], days: float) -> None:
    with ry.store.write() as conn:
        conn.execute(
            sa.update(files)
            .where(files.c.id == file["file_id"])
            .values(created_at=utcnow() - timedelta(days=days))
        )


def snapshot(ry: Runyard) -> dict[str, Any]:
    """Every row of runs, jobs and files, and every file on disk."""
    with ry.store.read() as conn:
        rows = {
            table.name: sorted(tuple(map(str, r)) for r in conn.execute(sa.select(table)))
            for table in (workflows, runs, jobs, files)
        }
    root = ry.settings.data_dir / "files"
    return rows | {"disk": sorted(str(p) for p in root.rglob("*") if p.is_file())}


@dataclass
class Study:
    """The started workflow Files (Source -> RoundTrip) with:

    - run ``a``: source file ``a``; its RoundTrip job was completed with ``b`` (uploaded by
      that job), then restarted: that job is Obsolete, a new one Queued with input ``a``;
    - run ``c``: source file ``c``, obsoleted.
    """

    a: dict[str, Any]
    b: dict[str, Any]
    c: dict[str, Any]
    restarted: int
    obsolete_run: int


@pytest.fixture
def study(server: Server) -> Study:
    client = server.client
    for folder in [*sorted(TASK_TYPES.iterdir()), WORKFLOWS / "Files"]:
        client.post("/api/packages", content=folder_zip_bytes(folder)).raise_for_status()
    client.post("/api/workflows/Files/start").raise_for_status()
    a = upload(server, b"alpha\n", "a.txt")
    new_run(server, "a", a)
    worker = server.as_token(client.post("/api/tokens/worker", json={"name": "w1"}).json()["token"])
    client.post("/api/workers/register", json={"name": "w1"}, headers=worker).raise_for_status()
    [claim] = client.post("/api/workers/claim", json={"worker": "w1"}, headers=worker).json()
    serial = claim["job"]["serial"]
    b = upload(server, b"ALPHA\n", "a.upper.txt", server.as_token(claim["token"]))
    done = client.post(
        f"/api/jobs/{serial}/complete",
        json={"lease": claim["lease"]["lease"], "outputs": {"file": b, "lines": 1}},
        headers=worker,
    )
    assert done.status_code == 200, done.text
    client.post(f"/api/jobs/{serial}/restart").raise_for_status()
    c = upload(server, b"gamma\n" * 100, "c.txt")
    obsolete_run = new_run(server, "c", c)
    client.post(f"/api/runs/{obsolete_run}/obsolete").raise_for_status()
    return Study(a=a, b=b, c=c, restarted=serial, obsolete_run=obsolete_run)


def count(ry: Runyard, table: sa.Table) -> int:
    with ry.store.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


# -- dry run and purge ------------------------------------------------------------------------


def test_a_dry_run_says_what_would_go_and_changes_nothing(server: Server, study: Study) -> None:
    before = snapshot(server.ry)

    report = purge(server, dry_run=True)

    assert snapshot(server.ry) == before
    assert report == {
        "dry_run": True,
        "workflow": None,
        "older_than_days": None,
        "runs": 1,
        "jobs": 3,  # the restarted job, and the two jobs of run c
        "files": 2,
        "bytes": study.b["size"] + study.c["size"],
        "stray_files": 0,
        "workflows": [
            {"name": "Files", "state": "Started", "runs": 1, "jobs": 3, "files": 2,
             "bytes": study.b["size"] + study.c["size"]},
        ],
    }  # fmt: skip
    assert server.ry.activity(1)[0]["action"] == "purge.dry_run"


def test_the_purge_removes_what_the_dry_run_said(server: Server, study: Study) -> None:
    said = purge(server, dry_run=True)
    runs_before, jobs_before = count(server.ry, runs), count(server.ry, jobs)

    done = purge(server)

    assert done == said | {"dry_run": False}
    assert count(server.ry, runs) == runs_before - 1
    assert count(server.ry, jobs) == jobs_before - 3
    assert server.client.get(f"/api/jobs/{study.restarted}").status_code == 404
    assert not kept(server.ry, study.b) and not kept(server.ry, study.c)
    assert kept(server.ry, study.a)  # the run's source job and the new job use it
    page = server.client.get("/api/workflows/Files/runs", params={"obsolete": "include"}).json()
    assert [r["name"] for r in page["runs"]] == ["a"]
    [entry] = server.ry.activity(1)
    assert entry["action"] == "purge" and entry["message"].startswith("purged 1 runs, 3 jobs")
    assert purge(server)["jobs"] == 0  # nothing left to purge


def test_the_thumbnails_of_purged_files_go_with_them(server: Server, study: Study) -> None:
    folder = server.ry.settings.data_dir / "thumbnails"
    folder.mkdir()
    for ref in (study.a, study.b):
        (folder / f"{ref['file_id']}-96.png").write_bytes(b"png")
    purge(server)
    assert sorted(p.name for p in folder.iterdir()) == [f"{study.a['file_id']}-96.png"]


def test_a_file_that_a_live_job_refers_to_is_never_removed(server: Server, study: Study) -> None:
    new_run(server, "b again", study.b)  # b: uploaded and named by the restarted job too
    new_run(server, "c again", study.c)  # c: named by the obsolete run's jobs too
    for file in (study.a, study.b, study.c):
        age_file(server.ry, file, days=400)

    report = purge(server, older_than_days=0)

    assert report["jobs"] == 3 and report["files"] == 0
    assert kept(server.ry, study.a) and kept(server.ry, study.b) and kept(server.ry, study.c)


def test_a_template_that_names_a_file_keeps_it(server: Server, study: Study) -> None:
    with server.ry.store.write() as conn:  # as a define_on_first answer is remembered
        conn.execute(
            sa.text("UPDATE tasks SET inputs = :inputs WHERE name = 'RoundTrip'"),
            {"inputs": '[{"key": "file", "source": {"mode": "define_on_first", '
                       f'"template": {{"file_id": "{study.c["file_id"]}"}}}}}}]'},
        )  # fmt: skip
    assert purge(server)["files"] == 1 and kept(server.ry, study.c)


def test_unreferenced_uploads_go_after_the_grace_period(server: Server, study: Study) -> None:
    old = upload(server, b"never used", "old.txt")
    new = upload(server, b"just stored", "new.txt")
    age_file(server.ry, old, days=2)

    assert purge(server)["files"] == 3  # b, c and the old upload
    assert not kept(server.ry, old) and kept(server.ry, new)


def test_older_than_keeps_what_changed_lately(server: Server, study: Study) -> None:
    assert purge(server, dry_run=True, older_than_days=1)["jobs"] == 0
    manager = server.ry.purge
    manager.now = lambda: utcnow() + timedelta(days=2)
    report = purge(server, older_than_days=1)
    assert (report["runs"], report["jobs"], report["files"]) == (1, 3, 2)


def test_runs_and_jobs_of_an_obsolete_workflow_go_the_workflow_stays(
    server: Server, study: Study
) -> None:
    client = server.client
    client.post("/api/packages", content=folder_zip_bytes(WORKFLOWS / "Linear")).raise_for_status()
    for value in range(3):
        client.post(
            "/api/workflows/Linear/runs", json={"task": "Source", "outputs": {"value": value}}
        ).raise_for_status()
    client.post("/api/workflows/Linear/obsolete").raise_for_status()

    linear = purge(server, workflow="Linear")

    assert linear["workflows"] == [
        {"name": "Linear", "state": "Obsolete", "runs": 3, "jobs": 6, "files": 0, "bytes": 0}
    ]
    assert client.get("/api/workflows/Linear/status").json()["runs"] == []
    assert kept(server.ry, study.b)  # another workflow: untouched
    assert [w["name"] for w in purge(server)["workflows"]] == ["Files"]


def test_a_job_spawned_to_be_finished_later_is_kept_until_its_spawner_ends(
    server: Server,
) -> None:
    job = start_a_job(server)
    found = server.client.post(
        "/api/spawn/tasks", json={"task_type": {"name": "Test.Source"}, "name": "Found"},
        headers=job.as_job,
    ).json()  # fmt: skip
    [spawned] = server.client.post(
        "/api/spawn/jobs",
        json={"jobs": [{"task": found["id"], "outputs": {"value": 1}, "state": "Obsolete"}]},
        headers=job.as_job,
    ).json()

    assert purge(server)["jobs"] == 0
    failed = server.client.post(
        f"/api/jobs/{job.serial}/fail", json={"lease": job.lease, "error": "boom"},
        headers=job.as_worker,
    )  # fmt: skip
    assert failed.status_code == 200, failed.text
    report = purge(server)
    assert (report["runs"], report["jobs"]) == (0, 1)
    assert server.client.get(f"/api/jobs/{spawned['serial']}").status_code == 404


# -- files that have no record, and records that have no file ---------------------------------


def test_a_crash_after_the_commit_leaves_files_that_the_next_purge_removes(
    server: Server, study: Study, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(self: PurgeManager, plan: Any) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(PurgeManager, "_remove_files", crash)
        with pytest.raises(KeyboardInterrupt):
            server.ry.purge.purge(dry_run=False)
    left = [server.ry.files.path_of(f["file_id"]) for f in (study.b, study.c)]
    assert all(p.is_file() for p in left)  # files without records, no record without file
    assert not recorded(server.ry, study.b) and not recorded(server.ry, study.c)

    assert purge(server)["stray_files"] == 0  # too new: may be an upload being recorded
    for path in left:
        os.utime(path, (path.stat().st_atime, path.stat().st_mtime - 2 * DAY))
    report = purge(server)
    assert (report["files"], report["stray_files"], report["jobs"]) == (2, 2, 0)
    assert report["bytes"] == study.b["size"] + study.c["size"]
    assert not any(p.exists() for p in left)


def test_a_file_missing_already_is_fine(server: Server, study: Study) -> None:
    server.ry.files.path_of(study.c["file_id"]).unlink()
    assert purge(server)["files"] == 2
    assert not recorded(server.ry, study.c)


def test_a_purge_waits_for_no_one_forever_and_changes_nothing_when_it_gives_up(
    server: Server, study: Study, monkeypatch: pytest.MonkeyPatch
) -> None:
    ry = server.ry
    if ry.store.dialect != "postgresql":
        pytest.skip("SQLite has one writer at a time: the purge's write transaction waits")
    monkeypatch.setattr("runyard.operations.purge.LOCK_ATTEMPTS", 2)
    before = snapshot(ry)
    with ry.store.write() as conn:  # a job being changed, not committed yet
        conn.execute(sa.update(jobs).where(jobs.c.serial == study.restarted).values(error="x"))
        with pytest.raises(Conflict, match="runs and jobs were being changed"):
            ry.purge.purge(dry_run=False)
        conn.rollback()
    assert snapshot(ry) == before
    assert ry.purge.purge(dry_run=False).jobs == 3


# -- who may purge ----------------------------------------------------------------------------


def test_only_admins_may_purge(server: Server, study: Study) -> None:
    job = start_a_job(server)
    before = snapshot(server.ry)
    for headers in (job.as_worker, job.as_job):
        r = server.client.post("/api/purge", json={"dry_run": False}, headers=headers)
        assert r.status_code == 403 and error(r)["code"] == "forbidden", r.text
    assert snapshot(server.ry) == before


def test_bad_purge_requests_are_refused(server: Server, study: Study) -> None:
    r = server.client.post("/api/purge", json={"dry_run": False, "workflow": "Nope"})
    assert r.status_code == 404 and error(r)["code"] == "not_found"
    r = server.client.post("/api/purge", json={"dry_run": False, "older_than_days": -1})
    assert r.status_code == 422 and error(r)["details"] == {"older_than_days": -1}
    r = server.client.post("/api/purge", json={})
    assert r.status_code == 422 and error(r)["code"] == "invalid_input"
    assert kept(server.ry, study.c)


# -- the command ------------------------------------------------------------------------------


def test_runyard_purge_shows_what_it_removed(
    server: Server, study: Study, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    class InProcess(Client):
        def close(self) -> None:  # the test's server goes on
            pass

    def in_process(*args: Any) -> Client:
        client = InProcess("http://testserver", "")
        client._http.close()
        client._http = server.client  # type: ignore[assignment]
        return client

    monkeypatch.setattr("runyard.cli.context.client", in_process)
    runner = CliRunner(env={"COLUMNS": "100", "NO_COLOR": "1"})

    dry = runner.invoke(app, ["purge", "--dry-run", "--older-than", "0"])
    assert dry.exit_code == 0, dry.output
    assert "Would remove" in dry.output and "Nothing was changed (dry run)." in dry.output
    assert kept(server.ry, study.c)

    result = runner.invoke(app, ["purge", "--workflow", "Files"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "Removed:" in result.output
    [files_row] = [line for line in lines if "Files" in line and "Started" in line]
    assert files_row.replace("│", " ").split() == ["Files", "Started", "1", "3", "2", "606", "B"]
    assert not kept(server.ry, study.c)
