"""Spawning from a script: ``runyard.task.spawn`` and the ``xfworkerutil`` facade, against
the in-process server (SQLite and PostgreSQL), as the seed's search script spawns."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from runyard import task
from runyard.client import Client, RemoteError
from runyard.compat import xfsortorder, xfworkerutil
from runyard.store.schema import jobs, runs
from runyard.task import spawn
from tests.integration.test_task_library import Script, script  # noqa: F401

SELECT = {"name": "Test.Source", "version": "1.0.0.0"}


@pytest.fixture
def run(script: Script) -> Script:  # noqa: F811 (the fixture of test_task_library)
    """A script running as a job of the Linear workflow, with its job token."""
    return script


def connection(run: Script) -> xfworkerutil.ServerConnection:
    client = run.job.client()
    return xfworkerutil.ServerConnection(client=client, job_serial=run.job.serial)


def count(run: Script, table: Any) -> int:
    with run.server.ry.store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def search(
    run: Script, n_runs: int = 3, conn: xfworkerutil.ServerConnection | None = None
) -> tuple[list[int], dict[str, Any]]:
    """The seed script's 'filename' mode: per run a select job created Obsolete, an add job
    in its run, then the select job set Done; a follower task takes the select output."""
    worker = xfworkerutil.XFWorkerJob()
    conn = conn or connection(run)
    select_type, *_ = worker.find_xf_task_types(conn, "Test.Source")
    select_task = worker.spawn_xf_task_basic(conn, select_type, "A", spawn_key="A", inputs=[])
    add_task = worker.spawn_xf_task_basic(conn, select_type, "B", spawn_key="B")
    follower = spawn.spawn_task(
        "Test.Double",
        "Twice",
        inputs=[{"key": "value", "source": {"mode": "output", "task": "A", "key": "value"}}],
    )
    existing = worker.get_existing_job_sort_orders(conn)
    orders = xfsortorder.get_new_source_job_sort_orders(existing, n_runs)
    serials = []
    for n, order in enumerate(orders):
        entity = worker.create_output_entity(f"uuid-{run.running.lease}-{n}", f"sample {n}")
        metadata = {"run_display_name": f"run {n}", "display_name": f"a{n}", "run_entity": entity}
        select_job = worker.spawn_xf_job_basic(
            conn,
            select_type,
            select_task,
            outputs={"value": n},
            state="Obsolete",
            sort_order=order,
            metadata=metadata,
        )
        worker.spawn_xf_job_basic(
            conn,
            select_type,
            add_task,
            source_job_serial=select_job["serial"],
            outputs={"value": 10 + n},
        )
        xfworkerutil.update_xf_job(conn, select_job, state="Done")
        serials.append(select_job["serial"])
    conn.close()
    return serials, follower


def test_the_seed_scripts_spawning_creates_runs_and_their_followers(run: Script) -> None:
    runs_before = count(run, runs)
    serials, follower = search(run)
    assert count(run, runs) == runs_before + 3
    with run.server.ry.store.read() as conn:
        rows = conn.execute(
            select(jobs.c.run_id, jobs.c.state, jobs.c.inputs).where(
                jobs.c.task_id == follower["id"]
            )
        ).all()
        run_names = dict(conn.execute(select(runs.c.id, runs.c.name)).tuples().all())
    assert sorted(r.inputs["value"] for r in rows) == [0, 1, 2]
    assert {r.state for r in rows} == {"Queued"}
    assert sorted(run_names[r.run_id] for r in rows) == ["run 0", "run 1", "run 2"]
    jobs_after = count(run, jobs)
    # The same search again (as a retried job would run it): nothing new, same jobs.
    again, _ = search(run)
    assert again == serials
    assert count(run, jobs) == jobs_after and count(run, runs) == runs_before + 3


def test_jobs_that_are_not_read_are_sent_in_batches(run: Script) -> None:
    conn = connection(run)
    conn.jobs.size = 4
    worker = xfworkerutil.XFWorkerJob()
    task_a = worker.spawn_xf_task_basic(conn, SELECT, "A", spawn_key="A")
    before = count(run, runs)
    pending = [
        worker.spawn_xf_job_basic(conn, SELECT, task_a, outputs={"value": n}) for n in range(6)
    ]
    assert count(run, runs) == before + 4 and len(conn.jobs) == 2  # one batch sent
    assert pending[5]["state"] == "Done"  # reading a job sends its batch
    assert count(run, runs) == before + 6 and len(conn.jobs) == 0
    assert len({job["run_id"] for job in pending}) == 6
    assert dict(pending[0])["serial"] == pending[0]["serial"]


def test_a_refused_batch_fails_where_it_is_read(run: Script) -> None:
    conn = connection(run)
    task_a = spawn.spawn_task(SELECT, "A")
    job = conn.jobs.add(task_a, outputs={"value": "not a number"})
    assert isinstance(job["serial"], int), "a reserved serial: read without sending"
    with pytest.raises(RemoteError, match="output 'value'"):
        job["run_id"]
    for key in ("serial", "run_id"):
        with pytest.raises(task.TaskError, match="this job was not spawned"):
            job[key]
    with pytest.raises(task.TaskError, match="Done or Obsolete"):
        conn.jobs.add(task_a, state="Queued")


def test_the_library_functions(run: Script) -> None:
    [newest] = spawn.find_task_types("Test.Source")
    task_a = spawn.spawn_task(newest, "A", spawn_key="a")
    assert spawn.spawn_task(newest, "A again", spawn_key="a")["id"] == task_a["id"]
    orders = spawn.new_sort_orders(2)
    assert orders[0] > spawn.existing_sort_orders()[-1]
    made = spawn.spawn_jobs(
        [
            spawn.job_spec(task_a, outputs={"value": 1}, sort_order=orders[0], state="Obsolete"),
            spawn.job_spec(task_a, outputs={"value": 2}, sort_order=orders[1]),
        ]
    )
    assert [j["state"] for j in made] == ["Obsolete", "Done"]
    assert spawn.existing_sort_orders()[-2:] == orders
    assert spawn.set_job_state(made[0]["serial"], "Done")["state"] == "Done"
    assert spawn.set_job_state(made[0]["serial"], "Done")["state"] == "Done"  # idempotent


def test_finish_inside_the_connection_block_sends_the_jobs_not_sent_yet(
    run: Script, monkeypatch: pytest.MonkeyPatch
) -> None:
    import runyard.client

    def client(server: str, token: str, **options: Any) -> Client:
        made = Client(server, token, **options)
        made._http.close()
        made._http = TestClient(run.server.client.app, headers=run.running.as_job)  # type: ignore[assignment]
        return made

    monkeypatch.setattr(runyard.client, "Client", client)
    worker = xfworkerutil.XFWorkerJob()
    before = count(run, runs)
    with pytest.raises(SystemExit), worker.server_connection() as conn:
        task_a = worker.spawn_xf_task_basic(conn, SELECT, "A")
        worker.spawn_xf_job_basic(conn, SELECT, task_a, outputs={"value": 1})
        assert count(run, runs) == before
        worker.finish({})
    assert count(run, runs) == before + 1


class Counted:
    """The calls a client makes, by path."""

    def __init__(self, client: Client) -> None:
        self.calls: list[str] = []
        post = client.post

        def counted(path: str, body: Any = None, **kwargs: Any) -> Any:
            self.calls.append(path)
            return post(path, body, **kwargs)

        client.post = counted  # type: ignore[method-assign]

    def of(self, path: str) -> int:
        return sum(1 for c in self.calls if c == path)


def followers_by_state(run: Script, follower: dict[str, Any]) -> dict[str, int]:
    with run.server.ry.store.read() as conn:
        rows = conn.execute(select(jobs.c.state).where(jobs.c.task_id == follower["id"])).all()
    found: dict[str, int] = {}
    for (state,) in rows:
        found[state] = found.get(state, 0) + 1
    return found


def test_the_seeds_pattern_sends_one_batch_for_hundreds_of_runs(run: Script) -> None:
    conn = connection(run)
    calls = Counted(conn.client)
    serials, follower = search(run, 300, conn)
    assert calls.of("/api/spawn/batch") == 1, "900 spawns and state changes in one call"
    assert calls.of("/api/spawn/serials") <= 4
    assert followers_by_state(run, follower) == {"Queued": 300}
    with run.server.ry.store.read() as db:
        states = dict(db.execute(select(jobs.c.serial, jobs.c.state)).tuples().all())
    assert {states[s] for s in serials} == {"Done"}, "the serials read are the jobs'"


def test_a_crash_between_batches_leaves_no_run_done_and_the_retry_finishes_each_once(
    run: Script,
) -> None:
    conn = connection(run)
    conn.jobs.size = 200  # 3 items a run: batches end in the middle of runs
    worker = xfworkerutil.XFWorkerJob()
    select_task = worker.spawn_xf_task_basic(conn, SELECT, "A", spawn_key="A")
    add_task = worker.spawn_xf_task_basic(conn, SELECT, "B", spawn_key="B")
    follower = spawn.spawn_task(
        "Test.Double",
        "Twice",
        inputs=[{"key": "value", "source": {"mode": "output", "task": "A", "key": "value"}}],
    )
    # The script dies after 300 items: a batch of 200 went, the other 100 were never sent.
    first_serials = spawn_runs(conn, select_task, add_task, 100)
    with run.server.ry.store.read() as db:
        done = db.execute(
            select(func.count()).where(jobs.c.task_id == select_task["id"], jobs.c.state == "Done")
        ).scalar_one()
    assert done == 66 and followers_by_state(run, follower) == {"Queued": 66}
    runs_before = count(run, runs)

    retry = connection(run)  # the job retried: it reads what its first attempt spawned
    calls = Counted(retry.client)
    serials = spawn_runs(retry, select_task, add_task, 100)
    retry.close()
    assert calls.of("/api/spawn/batch") == 1, "one batch: the jobs sent before are known"
    assert serials[:67] == first_serials[:67], "the serials read are the first attempt's jobs"
    assert count(run, runs) == runs_before + 100 - 67, "each run once"
    assert followers_by_state(run, follower) == {"Queued": 100}
    with run.server.ry.store.read() as db:
        live = db.execute(
            select(func.count()).where(jobs.c.task_id == add_task["id"], jobs.c.state == "Done")
        ).scalar_one()
    assert live == 100 and len(set(serials)) == 100


def spawn_runs(
    conn: xfworkerutil.ServerConnection,
    select_task: dict[str, Any],
    add_task: dict[str, Any],
    n_runs: int,
) -> list[int]:
    """The seed's 'filename' pattern for ``n_runs`` runs; the select jobs' serials as read."""
    worker = xfworkerutil.XFWorkerJob()
    serials = []
    for n in range(n_runs):
        meta = {"run_display_name": f"run {n}"}
        first = worker.spawn_xf_job_basic(
            conn, SELECT, select_task, outputs={"value": n}, state="Obsolete", metadata=meta
        )
        worker.spawn_xf_job_basic(
            conn, SELECT, add_task, source_job_serial=first["serial"], outputs={"value": n}
        )
        xfworkerutil.update_xf_job(conn, first, state="Done")
        serials.append(first["serial"])
    return serials


def test_the_same_job_spawned_twice_is_one_job_with_one_serial(run: Script) -> None:
    conn = connection(run)
    task_a = spawn.spawn_task(SELECT, "A")
    task_b = spawn.spawn_task(SELECT, "B")
    one = conn.jobs.add(task_a, outputs={"value": 1}, state="Obsolete")
    two = conn.jobs.add(task_a, outputs={"value": 1}, state="Obsolete")
    assert one["serial"] == two["serial"], "known to be the same job before it is sent"
    joined = conn.jobs.add(task_b, outputs={"value": 2}, source_job_serial=two["serial"])
    done = conn.jobs.set_state(two, "Done")
    assert (done["serial"], done["state"]) == (one["serial"], "Done")
    assert joined["run_id"] == one["run_id"] == two["run_id"]


def test_the_server_answers_a_reserved_serial_of_a_repeated_job_with_the_first(
    run: Script,
) -> None:
    """What a client that does not recognise a repeated job sends: two reserved serials for
    one job; the second is answered, and named later in the batch, as the first."""
    task_a = spawn.spawn_task(SELECT, "A")
    task_b = spawn.spawn_task(SELECT, "B")
    client = run.job.client()
    [(first, last)] = [tuple(r) for r in client.post("/api/spawn/serials", {"count": 3})["ranges"]]
    same = {"task": task_a["id"], "outputs": {"value": 1}, "state": "Obsolete"}
    joins = {"task": task_b["id"], "outputs": {"value": 2}, "source_job_serial": first + 1}
    body = {
        "jobs": [same | {"serial": first}, same | {"serial": first + 1}, joins | {"serial": last}],
        "states": [{"serial": first + 1, "state": "Done", "after": 3}],
    }
    answer = client.post("/api/spawn/batch", body)
    assert [j["serial"] for j in answer["jobs"]] == [first, first, last]
    assert answer["jobs"][2]["run_id"] == answer["jobs"][0]["run_id"]
    assert (answer["states"][0]["serial"], answer["states"][0]["state"]) == (first, "Done")


def test_a_serial_not_reserved_by_the_job_is_refused(run: Script) -> None:
    task_a = spawn.spawn_task(SELECT, "A")
    client = run.job.client()
    [(first, _)] = [tuple(r) for r in client.post("/api/spawn/serials", {"count": 1})["ranges"]]
    item = {"task": task_a["id"], "outputs": {"value": 1}}
    with pytest.raises(RemoteError, match=f"serial {first + 1} was not reserved by job"):
        client.post("/api/spawn/batch", {"jobs": [item | {"serial": first + 1}]})
    made = client.post("/api/spawn/batch", {"jobs": [item | {"serial": first}]})
    assert made["jobs"][0]["serial"] == first
    with pytest.raises(RemoteError, match=f"serial {first} is a job already"):
        client.post(
            "/api/spawn/batch", {"jobs": [item | {"serial": first, "outputs": {"value": 2}}]}
        )
    with pytest.raises(RemoteError, match="after 0 to all"):
        client.post("/api/spawn/batch", {"jobs": [], "states": [{"serial": first, "after": 1}]})
