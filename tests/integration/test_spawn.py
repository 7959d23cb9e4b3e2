"""Spawning through the HTTP API with a job token: tasks, runs and jobs (SPEC section 4)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from runyard.packages import folder_zip_bytes
from runyard.store.schema import entities, jobs, runs, tasks
from tests.conftest import WORKFLOWS
from tests.integration.conftest import RunningJob, Server, error, start_a_job

SOURCE = {"name": "Test.Source", "version": "1.0.0.0"}
DOUBLE = {"name": "Test.Double"}


def counts(server: Server) -> dict[str, int]:
    with server.ry.store.read() as conn:
        return {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (tasks, runs, jobs, entities)
        }


def spawn_task(server: Server, job: RunningJob, **body: Any) -> Any:
    return server.client.post("/api/spawn/tasks", json=body, headers=job.as_job)


def spawn_jobs(server: Server, job: RunningJob, *items: dict[str, Any]) -> Any:
    return server.client.post("/api/spawn/jobs", json={"jobs": list(items)}, headers=job.as_job)


def found_and_doubled(server: Server, job: RunningJob) -> tuple[dict[str, Any], dict[str, Any]]:
    """Spawn a source task 'Found' and a follower 'Twice' taking its value."""
    found = spawn_task(server, job, task_type=SOURCE, name="Found", spawn_key="found")
    assert found.status_code == 200, found.text
    twice = spawn_task(
        server,
        job,
        task_type=DOUBLE,
        name="Twice",
        spawn_key="twice",
        inputs=[{"key": "value", "source": {"mode": "output", "task": "Found", "key": "value"}}],
    )
    assert twice.status_code == 200, twice.text
    return found.json(), twice.json()


def entity(name: str, uuid: str) -> dict[str, str]:
    return {"type": "Entity", "uuid": uuid, "name": name}


def jobs_of_task(server: Server, task_id: int) -> list[dict[str, Any]]:
    with server.ry.store.read() as conn:
        rows = conn.execute(
            select(jobs.c.serial, jobs.c.run_id, jobs.c.state, jobs.c.inputs)
            .where(jobs.c.task_id == task_id)
            .order_by(jobs.c.serial)
        )
        return [dict(r._mapping) for r in rows]


def test_spawning_a_task_twice_with_one_key_answers_the_first(server: Server) -> None:
    job = start_a_job(server)
    found, twice = found_and_doubled(server, job)
    assert found["name"] == "Found" and found["task_type"] == SOURCE
    assert twice["inputs"] == [
        {"key": "value", "source": {"mode": "output", "task": "Found", "key": "value"}}
    ]
    before = counts(server)
    again, _ = found_and_doubled(server, job)
    assert again["id"] == found["id"]
    assert counts(server) == before
    tasks_now = server.client.get("/api/workflows/Linear").json()["tasks"]
    assert [t["name"] for t in tasks_now] == ["Source", "Double", "Add", "Found", "Twice"]


def test_spawned_jobs_start_new_runs_with_names_entities_and_sort_orders(server: Server) -> None:
    job = start_a_job(server)
    found, twice = found_and_doubled(server, job)
    existing = server.client.get("/api/spawn/sort-orders", headers=job.as_job).json()
    assert len(existing) == 1
    response = spawn_jobs(
        server,
        job,
        *[
            {
                "task": found["id"],
                "outputs": {"value": n},
                "metadata": {
                    "run_display_name": f"scan {n}",
                    "display_name": f"scan {n}",
                    "run_entity": entity(f"sample {n}", f"uuid-{n}"),
                },
            }
            for n in range(3)
        ],
    )
    assert response.status_code == 200, response.text
    spawned = response.json()
    assert [j["state"] for j in spawned] == ["Done"] * 3
    assert len({j["run_id"] for j in spawned}) == 3
    after = server.client.get("/api/spawn/sort-orders", headers=job.as_job).json()
    assert after[0] == existing[0] and after == sorted(after) and len(after) == 4
    with server.ry.store.read() as conn:
        rows = conn.execute(
            select(runs.c.name, entities.c.name)
            .join(entities, entities.c.id == runs.c.entity_id)
            .order_by(runs.c.sort_order)
        ).all()
    assert [tuple(r) for r in rows] == [(f"scan {n}", f"sample {n}") for n in range(3)]
    # Created Done, each job created its follower in its run at once.
    followers = jobs_of_task(server, twice["id"])
    assert sorted(f["run_id"] for f in followers) == sorted(j["run_id"] for j in spawned)
    assert {f["state"] for f in followers} == {"Queued"}
    assert sorted(f["inputs"]["value"] for f in followers) == [0, 1, 2]


def test_given_sort_orders_are_kept(server: Server) -> None:
    job = start_a_job(server)
    found, _ = found_and_doubled(server, job)
    spawned = spawn_jobs(
        server,
        job,
        {"task": found["id"], "outputs": {"value": 1}, "sort_order": "zz"},
        {"task": found["id"], "outputs": {"value": 2}, "sort_order": "zy"},
    ).json()
    with server.ry.store.read() as conn:
        orders = {r.id: r.sort_order for r in conn.execute(select(runs.c.id, runs.c.sort_order))}
    assert [orders[j["run_id"]] for j in spawned] == ["zz", "zy"]


def test_an_obsolete_source_job_creates_its_followers_when_set_done(server: Server) -> None:
    job = start_a_job(server)
    found, twice = found_and_doubled(server, job)
    [source] = spawn_jobs(
        server, job, {"task": found["id"], "outputs": {"value": 5}, "state": "Obsolete"}
    ).json()
    assert source["state"] == "Obsolete"
    assert jobs_of_task(server, twice["id"]) == []
    done = server.client.post(
        f"/api/spawn/jobs/{source['serial']}/state", json={"state": "Done"}, headers=job.as_job
    )
    assert done.status_code == 200, done.text
    [follower] = jobs_of_task(server, twice["id"])
    assert follower["run_id"] == source["run_id"] and follower["inputs"] == {"value": 5}


def test_many_spawned_jobs_are_set_done_in_one_call_all_or_none(server: Server) -> None:
    job = start_a_job(server)
    found, twice = found_and_doubled(server, job)
    items = [{"task": found["id"], "outputs": {"value": v}, "state": "Obsolete"} for v in (1, 2)]
    sources = [j["serial"] for j in spawn_jobs(server, job, *items).json()]
    states = "/api/spawn/jobs/state"
    refused = [
        ({"serials": [*sources, job.serial], "state": "Done"}, 403, "not spawned by job"),
        ({"serials": [*sources, 999_999], "state": "Done"}, 404, "no job with serial 999999"),
        ({"serials": sources, "state": "Queued"}, 422, "Done or Obsolete, not 'Queued'"),
    ]
    for body, status, words in refused:
        response = server.client.post(states, json=body, headers=job.as_job)
        assert response.status_code == status and words in error(response)["message"]
    assert jobs_of_task(server, twice["id"]) == [], "nothing changed"
    done = server.client.post(states, json={"serials": sources}, headers=job.as_job)
    assert [j["state"] for j in done.json()] == ["Done", "Done"]
    assert sorted(j["inputs"]["value"] for j in jobs_of_task(server, twice["id"])) == [1, 2]
    again = server.client.post(states, json={"serials": sources}, headers=job.as_job)
    assert again.status_code == 200 and len(jobs_of_task(server, twice["id"])) == 2


def test_a_job_joins_the_run_of_its_source_job(server: Server) -> None:
    job = start_a_job(server)
    found, _ = found_and_doubled(server, job)
    added = spawn_task(
        server,
        job,
        task_type=SOURCE,
        name="Added",
        spawn_key="added",
    ).json()
    [source] = spawn_jobs(
        server, job, {"task": found["id"], "outputs": {"value": 1}, "state": "Obsolete"}
    ).json()
    [joined] = spawn_jobs(
        server,
        job,
        {"task": added["id"], "outputs": {"value": 2}, "source_job_serial": source["serial"]},
    ).json()
    assert joined["run_id"] == source["run_id"] and joined["state"] == "Done"
    assert joined["spawned_by_job"] == job.serial


def test_a_retried_spawning_job_spawns_nothing_twice(server: Server) -> None:
    job = start_a_job(server)
    found, _twice = found_and_doubled(server, job)
    orders = server.client.get("/api/spawn/sort-orders", headers=job.as_job).json()

    def search(job: RunningJob) -> list[dict[str, Any]]:
        items = [
            {
                "task": found["id"],
                "outputs": {"value": n},
                "state": "Obsolete",
                "metadata": {"run_display_name": f"r{n}", "run_entity": entity(f"e{n}", job.lease)},
                "sort_order": None,
            }
            for n in range(3)
        ]
        sources = spawn_jobs(server, job, *items).json()
        for source in sources:
            server.client.post(
                f"/api/spawn/jobs/{source['serial']}/state",
                json={"state": "Done"},
                headers=job.as_job,
            )
        return sources

    first = search(job)
    before = counts(server)
    # The attempt fails (its worker gives up on it), and the job is restarted by the engine.
    failed = server.client.post(
        f"/api/jobs/{job.serial}/release", json={"lease": job.lease}, headers=job.as_worker
    )
    assert failed.status_code == 200, failed.text
    claims = server.client.post(
        "/api/workers/claim", json={"worker": "w1", "max": 1}, headers=job.as_worker
    ).json()
    [claim] = [c for c in claims if c["job"]["serial"] == job.serial]
    retried = RunningJob(
        serial=job.serial,
        lease=claim["lease"]["lease"],
        job_token=claim["token"],
        worker_token=job.worker_token,
    )
    # The old attempt's token is refused; the new one spawns the same jobs again.
    assert spawn_task(server, job, task_type=SOURCE, name="x").status_code == 401
    again_found, _ = found_and_doubled(server, retried)
    assert again_found["id"] == found["id"]
    second = search(retried)
    assert [j["serial"] for j in second] == [j["serial"] for j in first]
    assert [j["run_id"] for j in second] == [j["run_id"] for j in first]
    assert counts(server) == before
    assert server.client.get("/api/spawn/sort-orders", headers=retried.as_job).json()[:1] == (
        orders
    )


def test_one_batch_with_the_same_job_twice_creates_it_once(server: Server) -> None:
    job = start_a_job(server)
    found, _ = found_and_doubled(server, job)
    item = {"task": found["id"], "outputs": {"value": 1}}
    a, b = spawn_jobs(server, job, item, item).json()
    assert a["serial"] == b["serial"]


def test_bad_spawns_are_refused_clearly_and_change_nothing(server: Server) -> None:
    job = start_a_job(server)
    found, twice = found_and_doubled(server, job)
    [source] = spawn_jobs(server, job, {"task": found["id"], "outputs": {"value": 1}}).json()
    before = counts(server)
    bad_tasks: list[tuple[dict[str, Any], int, str]] = [
        ({"task_type": {"name": "No.Such"}, "name": "n"}, 404, "not installed"),
        (
            {"task_type": {"name": "Test.Source", "version": "9.0.0.0"}, "name": "n"},
            404,
            "version 9.0.0.0",
        ),
        ({"task_type": SOURCE, "name": "Double"}, 409, "named 'Double'"),
        (
            {
                "task_type": DOUBLE,
                "name": "n",
                "inputs": [{"key": "value", "source": {"mode": "ui"}}],
            },
            422,
            "is not one that input",
        ),
        (
            {
                "task_type": DOUBLE,
                "name": "n",
                "inputs": [
                    {"key": "value", "source": {"mode": "output", "task": "Nope", "key": "value"}}
                ],
            },
            422,
            "not in this workflow",
        ),
        (
            {"task_type": DOUBLE, "name": "n", "inputs": [{"key": "nope", "source": {}}]},
            422,
            "has no input 'nope'",
        ),
    ]
    for body, status, words in bad_tasks:
        response = spawn_task(server, job, **body)
        assert response.status_code == status, (body, response.text)
        assert words in error(response)["message"], response.text
    bad_jobs: list[tuple[dict[str, Any], int, str]] = [
        ({"task": 999_999, "outputs": {}}, 404, "no task with id 999999"),
        ({"task": found["id"], "outputs": {"value": 1}, "state": "Queued"}, 422, "not 'Queued'"),
        ({"task": found["id"], "outputs": {"value": "x"}}, 422, "output 'value'"),
        ({"task": found["id"], "outputs": {"nope": 1}}, 422, "not in the interface"),
        ({"task": found["id"], "sort_order": "A!"}, 422, "not a sort order"),
        ({"task": found["id"], "metadata": {"run_entity": "x"}}, 422, "run_entity"),
        ({"task": found["id"], "source_job_serial": 999_999}, 404, "no job with serial"),
        # The run of the source job has a live job of 'Twice' (its follower) already.
        ({"task": twice["id"], "source_job_serial": source["serial"]}, 409, "live job"),
    ]
    for item, status, words in bad_jobs:
        good = {"task": found["id"], "outputs": {"value": 7}}
        response = spawn_jobs(server, job, good, item)
        assert response.status_code == status, (item, response.text)
        assert words in error(response)["message"], response.text
    too_many = spawn_jobs(server, job, *[{"task": found["id"]}] * 10_001)
    assert too_many.status_code == 422
    assert counts(server) == before


def test_a_job_cannot_spawn_into_another_workflow(server: Server) -> None:
    job = start_a_job(server)
    found, _ = found_and_doubled(server, job)
    client = server.client
    client.post("/api/packages", content=folder_zip_bytes(WORKFLOWS / "Diamond")).raise_for_status()
    client.post("/api/workflows/Diamond/start").raise_for_status()
    first = client.get("/api/workflows/Diamond").json()["tasks"][0]["name"]
    other_job = client.post(
        "/api/workflows/Diamond/runs", json={"task": first, "outputs": {"value": 1}}
    ).json()
    before = counts(server)
    response = spawn_jobs(server, job, {"task": other_job["task_id"], "outputs": {}})
    assert response.status_code == 404 and "spawning job's workflow" in error(response)["message"]
    response = spawn_jobs(
        server,
        job,
        {"task": found["id"], "outputs": {"value": 1}, "source_job_serial": other_job["serial"]},
    )
    assert response.status_code == 404 and "spawning job's workflow" in error(response)["message"]
    assert counts(server) == before


def test_only_a_running_job_token_spawns(server: Server) -> None:
    job = start_a_job(server)
    found_and_doubled(server, job)
    before = counts(server)
    for headers in ({}, job.as_worker):
        response = server.client.post(
            "/api/spawn/tasks", json={"task_type": SOURCE, "name": "x"}, headers=headers
        )
        assert response.status_code == 403, response.text
        assert "kind job" in error(response)["message"]
    response = server.client.get("/api/spawn/sort-orders")
    assert response.status_code == 403
    # A job sets only the states of jobs it spawned.
    other = server.client.post(
        f"/api/spawn/jobs/{job.serial}/state", json={"state": "Done"}, headers=job.as_job
    )
    assert other.status_code == 403
    assert counts(server) == before


def test_spawned_jobs_are_stored_as_other_jobs_are(server: Server) -> None:
    """The bulk inserts bind values as the columns' types do: timestamps read back whole."""
    job = start_a_job(server)
    found, twice = found_and_doubled(server, job)
    [spawned] = spawn_jobs(server, job, {"task": found["id"], "outputs": {"value": 3}}).json()
    stored = server.client.get(f"/api/jobs/{spawned['serial']}").json()
    created = datetime.fromisoformat(stored["created_at"])
    assert created.tzinfo is not None and abs(datetime.now(UTC) - created).total_seconds() < 60
    assert stored["finished_at"] == stored["created_at"]
    assert stored["outputs"] == {"value": 3} and stored["metadata"] == {}
    [follower] = jobs_of_task(server, twice["id"])
    with server.ry.store.read() as conn:
        raw = dict(conn.execute(select(jobs.c.serial, jobs.c.created_at)).tuples().all())
    assert raw[follower["serial"]] == raw[spawned["serial"]]
    assert raw[job.serial] <= raw[spawned["serial"]]


def test_many_spawned_jobs_set_done_each_get_their_followers_once_in_the_order_asked(
    server: Server,
) -> None:
    job = start_a_job(server)
    found, twice = found_and_doubled(server, job)
    items = [{"task": found["id"], "outputs": {"value": v}, "state": "Obsolete"} for v in range(40)]
    sources = [j["serial"] for j in spawn_jobs(server, job, *items).json()]
    states = "/api/spawn/jobs/state"
    first = server.client.post(states, json={"serials": sources[:5]}, headers=job.as_job)
    assert first.status_code == 200, first.text
    asked = [*reversed(sources), sources[3]]  # some Done already, one asked twice
    done = server.client.post(states, json={"serials": asked}, headers=job.as_job)
    assert done.status_code == 200, done.text
    assert [j["serial"] for j in done.json()] == asked
    assert {j["state"] for j in done.json()} == {"Done"}
    followers = jobs_of_task(server, twice["id"])
    assert sorted(f["inputs"]["value"] for f in followers) == list(range(40))
    by_run = {j["run_id"]: j for j in done.json()}
    assert {f["run_id"] for f in followers} == set(by_run)


def test_a_spawned_job_set_done_beside_a_live_job_of_its_task_is_refused(server: Server) -> None:
    job = start_a_job(server)
    found, twice = found_and_doubled(server, job)
    [source, other] = spawn_jobs(
        server,
        job,
        {"task": found["id"], "outputs": {"value": 1}, "state": "Obsolete"},
        {"task": found["id"], "outputs": {"value": 2}, "state": "Obsolete"},
    ).json()
    [rival] = spawn_jobs(
        server,
        job,
        {"task": found["id"], "outputs": {"value": 3}, "source_job_serial": source["serial"]},
    ).json()
    assert rival["run_id"] == source["run_id"] and rival["state"] == "Done"
    before = jobs_of_task(server, twice["id"])
    response = server.client.post(
        "/api/spawn/jobs/state",
        json={"serials": [other["serial"], source["serial"]], "state": "Done"},
        headers=job.as_job,
    )
    assert response.status_code == 409, response.text
    message = error(response)["message"]
    assert str(source["serial"]) in message and "live job" in message
    assert jobs_of_task(server, twice["id"]) == before, "nothing changed, not even the other job"
    one = server.client.post(
        f"/api/spawn/jobs/{source['serial']}/state", json={"state": "Done"}, headers=job.as_job
    )
    assert one.status_code == 409 and f"job {rival['serial']}, Done" in error(one)["message"]


def test_every_job_made_has_its_place_in_the_claim_order(server: Server) -> None:
    """Jobs made by every path (a new run, a follower, spawned jobs and their followers,
    spawned Obsolete then set Done, a restarted job) carry ``queue_order``: a claim reads
    only the Queued jobs that have one below the first rank no worker may take."""
    job = start_a_job(server)
    found, _twice = found_and_doubled(server, job)
    done = [{"task": found["id"], "outputs": {"value": v}} for v in range(3)]
    obsolete = [{"task": found["id"], "outputs": {"value": 9}, "state": "Obsolete"}]
    assert spawn_jobs(server, job, *done).status_code == 200
    [later] = spawn_jobs(server, job, *obsolete).json()
    states = "/api/spawn/jobs/state"
    set_done = server.client.post(states, json={"serials": [later["serial"]]}, headers=job.as_job)
    assert set_done.status_code == 200, set_done.text
    report = {"serial": job.serial, "lease": job.lease, "ok": True, "outputs": {"value": 1}}
    body = {"worker": "w1", "results": [report], "claim": 0}
    reported = server.client.post("/api/workers/report", json=body, headers=job.as_worker)
    assert reported.status_code == 200, reported.text
    restarted = server.client.post(f"/api/jobs/{job.serial}/restart")
    assert restarted.status_code == 200, restarted.text
    with server.ry.store.read() as conn:
        rows = conn.execute(select(jobs.c.serial, jobs.c.state, jobs.c.queue_order)).all()
    assert len(rows) > 10 and all(r.queue_order for r in rows), rows
    assert {r.queue_order[0] for r in rows if r.state == "Queued"} == {"1"}
