"""The worker protocol's edge cases (in-process server, SQLite and PostgreSQL): answers that
are lost on the way back, leases given back, the job log across attempts, and which worker a
worker token may speak for."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from runyard.operations.jobs import MAX_LOG_CHARS
from runyard.store.schema import jobs
from tests.integration.conftest import RunningJob, Server, error, start_a_job, start_jobs


def report(server: Server, job: RunningJob, result: dict[str, Any], claim: int = 0) -> Any:
    body = {
        "worker": "w1",
        "results": [{"serial": job.serial, "lease": job.lease} | result],
        "claim": claim,
    }
    return server.client.post("/api/workers/report", json=body, headers=job.as_worker)


def job_log(server: Server, serial: int) -> str:
    r = server.client.get(f"/api/jobs/{serial}/log")
    assert r.status_code == 200, r.text
    return r.text


def jobs_of_runs(server: Server) -> list[dict[str, int]]:
    """{task: job serial} of each run of Linear."""
    status = server.client.get("/api/workflows/Linear/status").json()
    return [{t: j["serial"] for t, j in run["jobs"].items()} for run in status["runs"]]


# -- lost answers ---------------------------------------------------------------------------


def test_a_repeated_report_of_a_done_job_under_its_lease_is_answered_as_done_once(
    server: Server,
) -> None:
    job = start_a_job(server)
    result = {"ok": True, "outputs": {"value": 4}, "log": "the end\n"}
    first = report(server, job, result)
    assert first.status_code == 200 and first.json()["results"] == [
        {"serial": job.serial, "state": "Done"}
    ]
    followers = jobs_of_runs(server)
    # The answer was lost: the worker reports the same result again.
    again = report(server, job, result)
    assert again.status_code == 200, again.text
    assert again.json()["results"] == [{"serial": job.serial, "state": "Done"}]
    assert job_log(server, job.serial) == "the end\n", "the log is not recorded twice"
    assert jobs_of_runs(server) == followers, "no second follower"
    # The single call is just as idempotent.
    r = server.client.post(
        f"/api/jobs/{job.serial}/complete",
        json={"lease": job.lease, "outputs": {"value": 4}, "log": "the end\n"},
        headers=job.as_worker,
    )
    assert r.status_code == 200 and r.json()["state"] == "Done"
    assert job_log(server, job.serial) == "the end\n"


def test_a_repeated_report_of_a_failed_job_under_its_lease_is_answered_as_failed_once(
    server: Server,
) -> None:
    job = start_a_job(server)
    result = {"ok": False, "error": "no scan", "log": "Traceback\n", "workdir": "/w/job-1"}
    assert report(server, job, result).json()["results"][0]["state"] == "Failed"
    again = report(server, job, result)
    assert again.status_code == 200, again.text
    assert again.json()["results"] == [{"serial": job.serial, "state": "Failed"}]
    assert job_log(server, job.serial) == "Traceback\n"
    assert server.client.get(f"/api/jobs/{job.serial}").json()["error"] == "no scan"


def test_a_report_under_another_lease_or_of_another_outcome_is_still_stale(
    server: Server,
) -> None:
    done, failed = start_jobs(server, 2)
    report(server, done, {"ok": True, "outputs": {"value": 1}}).raise_for_status()
    report(server, failed, {"ok": False, "error": "bad"}).raise_for_status()
    for job, result in [
        (done, {"ok": False, "error": "late"}),  # not what this lease reported
        (RunningJob(done.serial, "other-lease", "", done.worker_token), {"ok": True}),
        (RunningJob(failed.serial, "other-lease", "", failed.worker_token), {"ok": False}),
    ]:
        (answer,) = report(server, job, result).json()["results"]
        assert answer["serial"] == job.serial and answer["error"]["code"] == "stale_lease"
    # A job given up by its lease (made Obsolete by a user) refuses its old lease.
    server.client.post(
        f"/api/jobs/{done.serial}/state", json={"state": "Obsolete"}
    ).raise_for_status()
    (answer,) = report(server, done, {"ok": True, "outputs": {"value": 1}}).json()["results"]
    assert answer["error"]["code"] == "stale_lease"
    assert (
        error(
            server.client.post(
                f"/api/jobs/{done.serial}/complete",
                json={"lease": done.lease, "outputs": {"value": 1}},
                headers=done.as_worker,
            )
        )["code"]
        == "stale_lease"
    )


# -- giving jobs back -----------------------------------------------------------------------


def lease_and_worker(server: Server, serial: int) -> tuple[Any, Any]:
    with server.ry.store.read() as conn:
        row = conn.execute(
            sa.select(jobs.c.lease_id, jobs.c.worker_id).where(jobs.c.serial == serial)
        ).one()
    return row.lease_id, row.worker_id


def test_one_report_records_each_result_on_its_own_and_claims_the_followers(
    server: Server,
) -> None:
    """A report is one transaction, but a refused result (a stale lease, an unknown job)
    writes nothing of its own and undoes none of the others; the followers of the recorded
    ones are claimed in the same round trip."""
    first, second, third = start_jobs(server, 3)
    body = {
        "worker": "w1",
        "results": [
            {"serial": first.serial, "lease": first.lease, "ok": True, "outputs": {"value": 2}},
            {"serial": second.serial, "lease": "not-its-lease", "ok": True, "outputs": {}},
            {"serial": 999_999, "lease": "x", "ok": False, "error": "gone"},
            {"serial": third.serial, "lease": third.lease, "ok": False, "error": "bad scan"},
        ],
        "claim": 5,
    }
    r = server.client.post("/api/workers/report", json=body, headers=first.as_worker)
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert results[0] == {"serial": first.serial, "state": "Done"}
    assert results[1]["serial"] == second.serial and results[1]["error"]["code"] == "stale_lease"
    assert results[2]["serial"] == 999_999 and results[2]["error"]["code"] == "not_found"
    assert results[3] == {"serial": third.serial, "state": "Failed"}
    states = {s: server.client.get(f"/api/jobs/{s}").json()["state"] for s in
              (first.serial, second.serial, third.serial)}  # fmt: skip
    assert states == {first.serial: "Done", second.serial: "Running", third.serial: "Failed"}
    [claimed] = r.json()["claimed"]
    follower = claimed["job"]
    assert follower["inputs"] == {"value": 2, "offset": 10} and follower["state"] == "Running"
    assert claimed["lease"]["lease"] and claimed["token"].startswith("ry_job_")


def test_a_job_given_back_keeps_no_lease_and_no_worker(server: Server) -> None:
    job = start_a_job(server)
    r = server.client.post(
        f"/api/jobs/{job.serial}/release", json={"lease": job.lease}, headers=job.as_worker
    )
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["attempt"], r.json()["worker"]) == ("Queued", 0, None)
    assert lease_and_worker(server, job.serial) == (None, None)


def test_a_job_whose_lease_expired_is_queued_with_no_lease_and_no_worker(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = start_a_job(server)
    later = datetime.now(UTC) + timedelta(seconds=server.ry.settings.lease_seconds + 1)
    monkeypatch.setattr(server.ry.leases, "now", lambda: later)
    assert server.ry.leases.expire_leases() == 1
    queued = server.client.get(f"/api/jobs/{job.serial}").json()
    assert (queued["state"], queued["attempt"], queued["worker"]) == ("Queued", 1, None)
    assert lease_and_worker(server, job.serial) == (None, None)


# -- the job log ----------------------------------------------------------------------------


def test_a_heartbeat_appends_to_the_log_without_sending_the_log_back(server: Server) -> None:
    job = start_a_job(server)
    big = "a" * (MAX_LOG_CHARS // 2)
    heartbeat = {"lease": job.lease, "log": big}
    url = f"/api/jobs/{job.serial}/heartbeat"
    server.client.post(url, json=heartbeat, headers=job.as_worker).raise_for_status()
    sent: list[Any] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append(parameters)

    engine = server.ry.store.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        heartbeat["log"] = "b\n"
        server.client.post(url, json=heartbeat, headers=job.as_worker).raise_for_status()
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert max(len(repr(p)) for p in sent) < 1000, "the log is not read and written again"
    assert job_log(server, job.serial) == big + "b\n"


def claim(server: Server, job: RunningJob) -> RunningJob:
    """Claim the job again as worker w1 (it is the only Queued one)."""
    (claimed,) = server.client.post(
        "/api/workers/claim", json={"worker": "w1", "max": 1}, headers=job.as_worker
    ).json()
    assert claimed["job"]["serial"] == job.serial
    return RunningJob(job.serial, claimed["lease"]["lease"], claimed["token"], job.worker_token)


ATTEMPT = r"----- attempt (\d+) on worker w1 at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC -----\n"


def test_a_new_attempt_starts_its_log_with_a_separator_line(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = start_a_job(server)
    assert job_log(server, first.serial) == "", "no separator before the first attempt"
    url = f"/api/jobs/{first.serial}/heartbeat"
    body = {"lease": first.lease, "log": "attempt one, cut off"}  # no newline at the end
    server.client.post(url, json=body, headers=first.as_worker).raise_for_status()
    later = datetime.now(UTC) + timedelta(seconds=server.ry.settings.lease_seconds + 1)
    monkeypatch.setattr(server.ry.leases, "now", lambda: later)
    server.ry.leases.expire_leases()
    second = claim(server, first)
    body = {"lease": second.lease, "log": "attempt two\n"}
    server.client.post(url, json=body, headers=second.as_worker).raise_for_status()
    server.client.post(
        f"/api/jobs/{first.serial}/release", json={"lease": second.lease}, headers=first.as_worker
    ).raise_for_status()
    claim(server, first)
    log = job_log(server, first.serial)
    assert re.fullmatch(f"attempt one, cut off\n{ATTEMPT}attempt two\n{ATTEMPT}", log), log
    assert re.findall(ATTEMPT, log) == ["2", "2"], "a job given back does not count an attempt"


# -- which worker a token speaks for --------------------------------------------------------


def test_a_worker_token_may_not_speak_for_another_worker(server: Server) -> None:
    job = start_a_job(server)  # its worker token is w1's
    calls = [
        ("/api/workers/register", {"name": "w2", "max_jobs": 1}),
        ("/api/workers/claim", {"worker": "w2", "max": 1}),
        ("/api/workers/report", {"worker": "w2", "results": [], "claim": 1}),
        ("/api/workers/heartbeat", {"worker": "w2", "beats": []}),
    ]
    for path, body in calls:
        r = server.client.post(path, json=body, headers=job.as_worker)
        assert r.status_code == 403, (path, r.text)
        assert error(r)["code"] == "forbidden"
        assert "worker token of w1" in error(r)["message"] and "w2" in error(r)["message"]
    # Under its own name it may; the admin token may speak for any worker (runyard up).
    r = server.client.post(
        "/api/workers/report", json={"worker": "w1", "claim": 1}, headers=job.as_worker
    )
    assert r.status_code == 200, r.text
    server.client.post(
        "/api/workers/register", json={"name": "w2", "max_jobs": 1}
    ).raise_for_status()
    r = server.client.post("/api/workers/claim", json={"worker": "w2", "max": 1})
    assert r.status_code == 200, r.text


def another_worker(server: Server, name: str = "w2") -> dict[str, str]:
    """The headers of a second worker's token (the worker registered)."""
    token = server.client.post("/api/tokens/worker", json={"name": name}).json()["token"]
    headers = server.as_token(token)
    server.client.post(
        "/api/workers/register", json={"name": name, "max_jobs": 1}, headers=headers
    ).raise_for_status()
    return headers


def test_a_worker_token_may_not_act_on_a_job_that_another_worker_holds(server: Server) -> None:
    job = start_a_job(server)  # held by w1
    w2 = another_worker(server)
    lease = {"lease": job.lease}
    calls = [
        (f"/api/jobs/{job.serial}/heartbeat", lease | {"log": "not mine"}),
        (f"/api/jobs/{job.serial}/complete", lease | {"outputs": {"value": 1}}),
        (f"/api/jobs/{job.serial}/fail", lease | {"error": "not mine"}),
        (f"/api/jobs/{job.serial}/release", lease),
        (f"/api/jobs/{job.serial}/progress", {"fraction": 0.5, "message": "not mine"}),
    ]
    for path, body in calls:
        r = server.client.post(path, json=body, headers=w2)
        assert r.status_code == 403, (path, r.text)
        problem = error(r)
        assert problem["code"] == "forbidden"
        assert f"job {job.serial}" in problem["message"] and "w1" in problem["message"]
        assert "w2" in problem["message"]
    # The batch calls answer per job: the report's error, the heartbeat's refused serial.
    item = {"serial": job.serial, "lease": job.lease, "ok": True, "outputs": {"value": 1}}
    r = server.client.post(
        "/api/workers/report", json={"worker": "w2", "results": [item]}, headers=w2
    )
    assert r.status_code == 200, r.text
    (answer,) = r.json()["results"]
    assert answer["serial"] == job.serial and answer["error"]["code"] == "forbidden"
    beat = {"serial": job.serial, "lease": job.lease, "log": "not mine"}
    r = server.client.post(
        "/api/workers/heartbeat", json={"worker": "w2", "beats": [beat]}, headers=w2
    )
    assert r.status_code == 200 and r.json() == {"refused": [job.serial], "install": []}, r.text

    shown = server.client.get(f"/api/jobs/{job.serial}").json()
    assert (shown["state"], shown["attempt"], shown["worker"]) == ("Running", 1, "w1")
    assert (shown["progress"], job_log(server, job.serial)) == (None, ""), "nothing recorded"
    # Its own worker finishes it; another worker repeating that report is still refused.
    assert report(server, job, item).json()["results"] == [{"serial": job.serial, "state": "Done"}]
    r = server.client.post(
        f"/api/jobs/{job.serial}/complete", json=lease | {"outputs": {"value": 1}}, headers=w2
    )
    assert r.status_code == 403, r.text


def test_the_admin_token_may_act_on_any_workers_job(server: Server) -> None:
    job = start_a_job(server)  # held by w1
    r = server.client.post(f"/api/jobs/{job.serial}/heartbeat", json={"lease": job.lease})
    assert r.status_code == 200, r.text
    r = server.client.post(f"/api/jobs/{job.serial}/release", json={"lease": job.lease})
    assert r.status_code == 200 and r.json()["state"] == "Queued", r.text


def test_a_stale_lease_of_another_worker_is_still_answered_as_stale(server: Server) -> None:
    """A worker whose lease ran out, while the job now runs on another worker, gets 409
    stale_lease (not 403): it did hold the job, under that lease."""
    job = start_a_job(server)  # held by w1
    server.client.post(
        f"/api/jobs/{job.serial}/release", json={"lease": job.lease}, headers=job.as_worker
    ).raise_for_status()
    w2 = another_worker(server)
    server.client.post(
        "/api/workers/claim", json={"worker": "w2", "max": 1}, headers=w2
    ).raise_for_status()
    r = server.client.post(
        f"/api/jobs/{job.serial}/complete",
        json={"lease": job.lease, "outputs": {"value": 1}},
        headers=job.as_worker,
    )
    assert r.status_code == 409 and error(r)["code"] == "stale_lease", r.text


# -- last seen --------------------------------------------------------------------------------


def test_a_workers_claims_and_heartbeats_keep_its_last_seen_fresh(server: Server) -> None:
    job = start_a_job(server)  # registered as w1, its job claimed

    def last_seen() -> datetime:
        [w1] = [w for w in server.client.get("/api/workers").json() if w["name"] == "w1"]
        return datetime.fromisoformat(w1["last_seen"])

    # The fake clock starts a minute after the worker's real registration, whatever today is.
    start = last_seen() + timedelta(minutes=1)

    def beat(at: datetime) -> None:
        server.ry.workers.now = lambda: at
        body = {"worker": "w1", "beats": [{"serial": job.serial, "lease": job.lease}]}
        r = server.client.post("/api/workers/heartbeat", json=body, headers=job.as_worker)
        assert r.status_code == 200 and r.json()["refused"] == [], r.text

    beat(start)
    assert last_seen() == start
    beat(start + timedelta(seconds=5))
    assert last_seen() == start, "written at most every 10 s"
    beat(start + timedelta(minutes=2))
    assert last_seen() == start + timedelta(minutes=2)
    server.ry.workers.now = lambda: start + timedelta(minutes=5)
    claim = {"worker": "w1", "max": 1, "wait": 0}
    r = server.client.post("/api/workers/claim", json=claim, headers=job.as_worker)
    assert r.status_code == 200, r.text
    assert last_seen() == start + timedelta(minutes=5)
    beat(start - timedelta(hours=1))
    assert last_seen() == start - timedelta(hours=1), "a clock set back is noted at once"
