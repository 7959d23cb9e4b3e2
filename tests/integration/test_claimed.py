"""Claimed and not started, SQLite and PostgreSQL: a Running job whose worker has not said
that its script started (a job claimed ahead, waiting for a free slot) is shown as claimed,
not as running, in the job, the runs table and the status; the state stays Running."""

from __future__ import annotations

from typing import Any

from tests.integration.conftest import Server, start_jobs


def cells(server: Server) -> dict[int, dict[str, Any]]:
    page = server.client.get("/api/workflows/Linear/runs").json()
    return {c["serial"]: c for run in page["runs"] for c in run["jobs"].values()}


def status_cells(server: Server) -> dict[int, dict[str, Any]]:
    status = server.client.get("/api/workflows/Linear/status").json()
    return {c["serial"]: c for run in status["runs"] for c in run["jobs"].values()}


def test_a_claimed_job_is_shown_claimed_until_its_worker_says_the_script_started(
    server: Server,
) -> None:
    started, ahead = start_jobs(server, 2)
    for job in (started, ahead):
        shown = server.client.get(f"/api/jobs/{job.serial}").json()
        assert (shown["state"], shown["claimed"]) == ("Running", True)
        assert shown["script_started_at"] is None
    beats = [
        {"serial": started.serial, "lease": started.lease, "started": True},
        {"serial": ahead.serial, "lease": ahead.lease},
    ]
    answer = server.client.post(
        "/api/workers/heartbeat", json={"worker": "w1", "beats": beats}, headers=started.as_worker
    )
    assert answer.status_code == 200 and answer.json()["refused"] == [], answer.text
    running = server.client.get(f"/api/jobs/{started.serial}").json()
    assert running["claimed"] is False and running["script_started_at"] is not None
    assert server.client.get(f"/api/jobs/{ahead.serial}").json()["claimed"] is True
    for shown in (cells(server), status_cells(server)):
        assert shown[ahead.serial]["state"] == "Running" and shown[ahead.serial]["claimed"]
        assert not shown[started.serial].get("claimed")


def test_a_job_claimed_again_is_claimed_until_its_new_worker_starts_it(server: Server) -> None:
    [job] = start_jobs(server, 1)
    one = server.client.post(
        f"/api/jobs/{job.serial}/heartbeat",
        json={"lease": job.lease, "started": True},
        headers=job.as_worker,
    )
    assert one.status_code == 200, one.text
    assert server.client.get(f"/api/jobs/{job.serial}").json()["claimed"] is False
    server.client.post(
        f"/api/jobs/{job.serial}/release", json={"lease": job.lease}, headers=job.as_worker
    ).raise_for_status()
    again = server.client.post(
        "/api/workers/claim", json={"worker": "w1", "max": 1}, headers=job.as_worker
    ).json()
    assert [c["job"]["serial"] for c in again] == [job.serial]
    shown = server.client.get(f"/api/jobs/{job.serial}").json()
    assert shown["claimed"] is True and shown["script_started_at"] is None
