"""An admin's limit on a worker's concurrent jobs, and the workers' Running jobs, on SQLite
and PostgreSQL (through the API: the worker protocol applies the limit)."""

from __future__ import annotations

from tests.integration.conftest import Server, start_jobs


def test_a_limited_worker_claims_no_more_than_its_limit(server: Server) -> None:
    jobs = start_jobs(server, 2)  # worker w1 holds two Running jobs
    client, worker = server.client, server.as_token(jobs[0].worker_token)
    for value in range(3):
        client.post(
            "/api/workflows/Linear/runs", json={"task": "Source", "outputs": {"value": value}}
        )
    limited = client.put("/api/workers/w1/max-jobs", json={"max_jobs": 2})
    assert limited.status_code == 200 and limited.json()["max_jobs_limit"] == 2
    claim = {"worker": "w1", "max": 5}
    assert client.post("/api/workers/claim", json=claim, headers=worker).json() == [], "2 of 2"
    listed = {w["name"]: w for w in client.get("/api/workers").json()}["w1"]
    assert sorted(listed["running"]) == sorted(j.serial for j in jobs)
    assert (listed["max_jobs"], listed["max_jobs_limit"]) == (2, 2)

    client.put("/api/workers/w1/max-jobs", json={"max_jobs": 3})
    assert len(client.post("/api/workers/claim", json=claim, headers=worker).json()) == 1
    client.put("/api/workers/w1/max-jobs", json={"max_jobs": None})
    assert len(client.post("/api/workers/claim", json=claim, headers=worker).json()) == 2


def test_bad_limits_are_refused(server: Server) -> None:
    [job] = start_jobs(server, 1)
    refused = server.client.put("/api/workers/w1/max-jobs", json={"max_jobs": -1})
    assert refused.status_code == 422
    missing = server.client.put("/api/workers/nobody/max-jobs", json={"max_jobs": 1})
    assert missing.status_code == 404 and "no worker named 'nobody'" in missing.text
    by_worker = server.client.put(
        "/api/workers/w1/max-jobs", json={"max_jobs": 9}, headers=server.as_token(job.worker_token)
    )
    assert by_worker.status_code == 403, "only admins set limits"
    assert server.client.get("/api/workers").json()[0]["max_jobs_limit"] is None
