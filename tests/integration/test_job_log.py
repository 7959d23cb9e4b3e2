"""The job log, progress and activity messages through the HTTP API (in-process server,
SQLite and PostgreSQL): what a worker sends with its heartbeats and its final call, and what
a script reports with its job token."""

from __future__ import annotations

from typing import Any

from runyard.operations.jobs import MAX_LOG_CHARS
from tests.integration.conftest import RunningJob, Server, error, start_a_job, start_jobs

MARKER = "[... earlier output dropped"


def heartbeat(server: Server, job: RunningJob, log: str | None = None, **body: Any) -> Any:
    payload = {"lease": job.lease} | ({"log": log} if log is not None else {}) | body
    return server.client.post(
        f"/api/jobs/{job.serial}/heartbeat", json=payload, headers=job.as_worker
    )


def job_log(server: Server, serial: int, offset: int | None = None) -> str:
    params = {"offset": offset} if offset is not None else None
    r = server.client.get(f"/api/jobs/{serial}/log", params=params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return r.text


# -- the log ------------------------------------------------------------------------------


def test_heartbeats_add_the_scripts_output_to_the_log(server: Server) -> None:
    job = start_a_job(server)
    assert job_log(server, job.serial) == ""
    assert heartbeat(server, job, "line 1\n").status_code == 200
    assert heartbeat(server, job).status_code == 200  # nothing new: the lease only
    assert heartbeat(server, job, "line 2 é ✓\n").status_code == 200
    assert job_log(server, job.serial) == "line 1\nline 2 é ✓\n"


def test_the_log_is_read_from_an_offset_in_characters(server: Server) -> None:
    job = start_a_job(server)
    heartbeat(server, job, "é✓ one\n").raise_for_status()
    seen = job_log(server, job.serial)
    heartbeat(server, job, "two 🙂\n").raise_for_status()
    assert job_log(server, job.serial, offset=len(seen)) == "two 🙂\n"
    assert job_log(server, job.serial, offset=3) == "one\ntwo 🙂\n"
    assert job_log(server, job.serial, offset=10_000) == ""
    assert job_log(server, job.serial, offset=-5) == "é✓ one\ntwo 🙂\n"


def test_a_job_token_reads_its_own_log(server: Server) -> None:
    job = start_a_job(server)
    heartbeat(server, job, "hello\n").raise_for_status()
    r = server.client.get(f"/api/jobs/{job.serial}/log", headers=job.as_job)
    assert r.status_code == 200 and r.text == "hello\n"


def test_complete_adds_the_rest_of_the_log(server: Server) -> None:
    job = start_a_job(server)
    heartbeat(server, job, "started\n").raise_for_status()
    r = server.client.post(
        f"/api/jobs/{job.serial}/complete",
        json={"lease": job.lease, "outputs": {"value": 10}, "log": "finished\n"},
        headers=job.as_worker,
    )
    assert r.status_code == 200 and r.json()["state"] == "Done"
    assert job_log(server, job.serial) == "started\nfinished\n"


def test_fail_adds_the_rest_of_the_log_and_records_the_kept_working_folder(
    server: Server,
) -> None:
    job = start_a_job(server)
    heartbeat(server, job, "started\n").raise_for_status()
    r = server.client.post(
        f"/api/jobs/{job.serial}/fail",
        json={
            "lease": job.lease,
            "error": "the scan is empty",
            "log": "Traceback ...\n",
            "workdir": "/var/runyard/jobs/job-1-abc",
        },
        headers=job.as_worker,
    )
    assert r.status_code == 200, r.text
    failed = r.json()
    assert failed["state"] == "Failed" and failed["error"] == "the scan is empty"
    assert failed["workdir"] == "/var/runyard/jobs/job-1-abc"
    assert job_log(server, job.serial) == "started\nTraceback ...\n"


def test_the_log_keeps_its_last_mebibyte_behind_a_marker(server: Server) -> None:
    job = start_a_job(server)
    half = MAX_LOG_CHARS // 2 + 1000
    heartbeat(server, job, "a" * half).raise_for_status()
    heartbeat(server, job, "b" * half + "END\n").raise_for_status()
    log = job_log(server, job.serial)
    assert len(log) == MAX_LOG_CHARS
    assert log.startswith(MARKER) and log.endswith("b" * half + "END\n")
    _, kept = log.split("\n", 1)  # the marker is a line of its own
    assert kept == "a" * (len(kept) - half - 4) + "b" * half + "END\n"
    # Cut again: still one marker, at the start; the newest output whole.
    heartbeat(server, job, "é" * MAX_LOG_CHARS + "LAST\n").raise_for_status()
    log = job_log(server, job.serial)
    assert len(log) == MAX_LOG_CHARS and log.count(MARKER) == 1
    assert log.startswith(MARKER) and log.endswith("éé" + "LAST\n")
    # The rest of the log given with the final call is capped the same way.
    server.client.post(
        f"/api/jobs/{job.serial}/complete",
        json={"lease": job.lease, "outputs": {}, "log": "x" * MAX_LOG_CHARS + "DONE\n"},
        headers=job.as_worker,
    ).raise_for_status()
    log = job_log(server, job.serial)
    assert len(log) == MAX_LOG_CHARS and log.count(MARKER) == 1 and log.endswith("xDONE\n")


def test_output_with_nul_characters_is_stored(server: Server) -> None:
    """A script may print NUL bytes (binary data by mistake); the log must take them on
    PostgreSQL too (its text cannot hold NUL), or the job, and every job whose lease is
    renewed in the same batch heartbeat, would lose its lease."""
    noisy, quiet = start_jobs(server, 2)
    beats = [
        {"serial": noisy.serial, "lease": noisy.lease, "log": "a\x00b\n"},
        {"serial": quiet.serial, "lease": quiet.lease, "log": "fine\n"},
    ]
    r = server.client.post(
        "/api/workers/heartbeat", json={"worker": "w1", "beats": beats}, headers=noisy.as_worker
    )
    assert r.status_code == 200 and r.json()["refused"] == [], r.text
    r = server.client.post(
        f"/api/jobs/{noisy.serial}/complete",
        json={"lease": noisy.lease, "outputs": {}, "log": "c\x00d\n"},
        headers=noisy.as_worker,
    )
    assert r.status_code == 200, r.text
    assert job_log(server, noisy.serial) == "a\ufffdb\nc\ufffdd\n"
    assert job_log(server, quiet.serial) == "fine\n"


def test_a_batch_heartbeat_adds_each_jobs_output_to_its_log(server: Server) -> None:
    first, second = start_jobs(server, 2)
    beats = [
        {"serial": first.serial, "lease": first.lease, "log": "first\n"},
        {"serial": second.serial, "lease": "stale", "log": "not mine\n"},
        {"serial": 999999, "lease": "x", "log": "nobody's\n"},
    ]
    r = server.client.post(
        "/api/workers/heartbeat", json={"worker": "w1", "beats": beats}, headers=first.as_worker
    )
    assert r.status_code == 200, r.text
    assert sorted(r.json()["refused"]) == [second.serial, 999999]
    assert job_log(server, first.serial) == "first\n"
    assert job_log(server, second.serial) == ""


def test_a_heartbeat_under_a_stale_lease_is_refused_and_adds_nothing(server: Server) -> None:
    job = start_a_job(server)
    heartbeat(server, job, "mine\n").raise_for_status()
    r = heartbeat(server, job, "not mine\n", lease="someone-else")
    assert r.status_code == 409 and error(r)["code"] == "stale_lease"
    assert "no longer held by this lease" in error(r)["message"]
    # Once the job is Done, its own lease is stale too.
    server.client.post(
        f"/api/jobs/{job.serial}/complete",
        json={"lease": job.lease, "outputs": {}, "log": "end\n"},
        headers=job.as_worker,
    ).raise_for_status()
    r = heartbeat(server, job, "late\n")
    assert r.status_code == 409 and error(r)["code"] == "stale_lease"
    r = server.client.post(
        f"/api/jobs/{job.serial}/fail",
        json={"lease": job.lease, "error": "late", "log": "late\n"},
        headers=job.as_worker,
    )
    assert r.status_code == 409 and error(r)["code"] == "stale_lease"
    assert job_log(server, job.serial) == "mine\nend\n"


def test_a_heartbeat_or_log_of_an_unknown_job_is_not_found(server: Server) -> None:
    job = start_a_job(server)
    r = server.client.post(
        "/api/jobs/999999/heartbeat", json={"lease": job.lease, "log": "x"}, headers=job.as_worker
    )
    assert r.status_code == 404 and error(r)["code"] == "not_found"
    assert "no job with serial 999999" in error(r)["message"]
    r = server.client.get("/api/jobs/999999/log")
    assert r.status_code == 404 and error(r)["code"] == "not_found"


def test_a_job_token_may_not_heartbeat(server: Server) -> None:
    job = start_a_job(server)
    r = server.client.post(
        f"/api/jobs/{job.serial}/heartbeat",
        json={"lease": job.lease, "log": "forged\n"},
        headers=job.as_job,
    )
    assert r.status_code == 403 and error(r)["code"] == "forbidden"
    assert job_log(server, job.serial) == ""


# -- progress -----------------------------------------------------------------------------


def progress(server: Server, job: RunningJob, body: dict[str, Any]) -> Any:
    return server.client.post(f"/api/jobs/{job.serial}/progress", json=body, headers=job.as_job)


def job_json(server: Server, serial: int) -> dict[str, Any]:
    data: dict[str, Any] = server.client.get(f"/api/jobs/{serial}").json()
    return data


def test_a_running_job_reports_its_progress(server: Server) -> None:
    job = start_a_job(server)
    assert job_json(server, job.serial)["progress"] is None
    r = progress(server, job, {"fraction": 0.25, "message": "reading the scan"})
    assert r.status_code == 200, r.text
    assert job_json(server, job.serial)["progress"] == {
        "fraction": 0.25,
        "message": "reading the scan",
    }
    progress(server, job, {"fraction": None, "message": "waiting for the licence"})
    assert job_json(server, job.serial)["progress"] == {
        "fraction": None,
        "message": "waiting for the licence",
    }
    for fraction in (0, 1):
        assert progress(server, job, {"fraction": fraction}).status_code == 200


def test_progress_out_of_range_is_refused(server: Server) -> None:
    job = start_a_job(server)
    progress(server, job, {"fraction": 0.5, "message": "half"}).raise_for_status()
    for body in (
        {"fraction": 1.5},
        {"fraction": -0.1},
        {"fraction": "half"},
        {"message": "x" * 1001},
    ):
        r = progress(server, job, body)
        assert r.status_code == 422 and error(r)["code"] == "invalid_input", body
    assert job_json(server, job.serial)["progress"] == {"fraction": 0.5, "message": "half"}


def test_progress_is_only_for_a_running_job(server: Server) -> None:
    job = start_a_job(server)
    server.client.post(
        f"/api/jobs/{job.serial}/complete",
        json={"lease": job.lease, "outputs": {}},
        headers=job.as_worker,
    ).raise_for_status()
    r = server.client.post(f"/api/jobs/{job.serial}/progress", json={"fraction": 0.5})
    assert r.status_code == 409 and error(r)["code"] == "stale_lease"
    r = server.client.post("/api/jobs/999999/progress", json={"fraction": 0.5})
    assert r.status_code == 404 and error(r)["code"] == "not_found"
    # The job token ended with the job.
    assert progress(server, job, {"fraction": 0.9}).status_code == 401


# -- activity messages --------------------------------------------------------------------


def test_a_jobs_activity_message_is_in_the_activity_log(server: Server) -> None:
    job = start_a_job(server)
    r = server.client.post(
        f"/api/jobs/{job.serial}/activity",
        json={"message": "scan 12 has no calibration; using the default", "level": "warning"},
        headers=job.as_job,
    )
    assert r.status_code == 200, r.text
    entries = server.client.get("/api/activity").json()
    [entry] = [e for e in entries if e["action"] == "job.message"]
    assert entry["actor"] == f"job {job.serial}" and entry["job_serial"] == job.serial
    assert entry["message"] == "scan 12 has no calibration; using the default"
    assert entry["level"] == "warning" and entry["workflow_id"] is not None


def test_a_bad_activity_message_is_refused(server: Server) -> None:
    job = start_a_job(server)
    for body in ({"message": ""}, {"message": "x", "level": "shouting"}, {"level": "info"}):
        r = server.client.post(f"/api/jobs/{job.serial}/activity", json=body, headers=job.as_job)
        assert r.status_code == 422 and error(r)["code"] == "invalid_input", body
    entries = server.client.get("/api/activity").json()
    assert not [e for e in entries if e["action"] == "job.message"]


def test_a_worker_token_may_not_write_activity_messages(server: Server) -> None:
    job = start_a_job(server)
    r = server.client.post(
        f"/api/jobs/{job.serial}/activity", json={"message": "x"}, headers=job.as_worker
    )
    assert r.status_code == 403 and error(r)["code"] == "forbidden"


# -- a job token is for its own job only --------------------------------------------------


def test_a_job_token_cannot_touch_another_job(server: Server) -> None:
    mine, other = start_jobs(server, 2)
    heartbeat(server, other, "other's output\n").raise_for_status()
    calls = [
        ("GET", f"/api/jobs/{other.serial}", None),
        ("GET", f"/api/jobs/{other.serial}/log", None),
        ("POST", f"/api/jobs/{other.serial}/progress", {"fraction": 0.5}),
        ("POST", f"/api/jobs/{other.serial}/activity", {"message": "hi"}),
        ("POST", f"/api/jobs/{other.serial}/state", {"state": "Aborted"}),
    ]
    for method, path, body in calls:
        r = server.client.request(method, path, json=body, headers=mine.as_job)
        assert r.status_code == 403 and error(r)["code"] == "forbidden", path
        assert f"for job {mine.serial}, not job {other.serial}" in error(r)["message"]
    after = job_json(server, other.serial)
    assert after["state"] == "Running" and after["progress"] is None
    assert job_log(server, other.serial) == "other's output\n"
