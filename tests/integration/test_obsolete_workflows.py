"""Obsoleting a workflow stops its running work, as obsoleting a run does (SQLite and
PostgreSQL): its Running jobs are given back in the same transaction (Queued, no lease, no
worker, the attempt not counted), so their workers' next heartbeat is refused and the scripts
are killed; starting the workflow again lets them run again. Stopping a workflow (back to
Draft) lets its Running jobs finish and starts nothing new."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from runyard.errors import Conflict, StaleLease
from runyard.operations import Runyard
from runyard.packages import load_package
from runyard.store import jobs as job_rows
from runyard.store import workflows as workflow_rows
from tests.conftest import WORKFLOWS
from tests.integration.conftest import Server, start_jobs
from tests.integration.test_engine import live_jobs, run_all, worker_id
from tests.integration.test_obsolete_runs import (
    GIVEN_BACK,
    every_state,
    lease_and_worker,
    refuse_late_reports,
    running_doubles,
)


@pytest.fixture
def two(linear: Runyard) -> Iterator[Runyard]:
    """Linear and the started workflow 'Reduced' (Source -> Double -> Table, a reduce)."""
    linear.workflows.import_package(load_package(WORKFLOWS / "Reduced"))  # type: ignore[arg-type]
    linear.workflows.set_state("Reduced", "Started")
    yield linear


def workflow_id(ry: Runyard, name: str) -> int:
    return ry.workflows.get(name)[0].id


def test_obsoleting_a_workflow_gives_its_running_jobs_back_and_starting_it_runs_them_again(
    two: Runyard,
) -> None:
    (job, lease), (second, _) = running_doubles(two, 2)
    two.jobs.new_run("Reduced", "Source", outputs={"value": 5}, name="other")
    [(other, other_lease)] = two.leases.claim(worker_id(two), [], 5)
    assert other.workflow_id == workflow_id(two, "Reduced")
    two.leases.heartbeat(job.serial, lease.lease_id, "working on it")
    two.workflows.set_state("Linear", "Obsolete", actor="alice")

    for serial in (job.serial, second.serial):
        given_back = two.jobs.get(serial)
        assert (given_back.state, given_back.attempt, given_back.worker) == ("Queued", 0, None)
        assert given_back.started_at is None
        assert lease_and_worker(two, serial) == (None, None)
    log = two.jobs.log(job.serial)
    assert log.startswith("working on it\n-----") and GIVEN_BACK in log
    assert "workflow Linear was obsoleted by alice" in log
    entries = [a for a in two.activity() if a["action"] == "job.give_back"]
    assert sorted(a["job_serial"] for a in entries) == [job.serial, second.serial]
    for entry in entries:
        assert entry["actor"] == "alice" and "workflow Linear was obsoleted" in entry["message"]
    assert two.jobs.get(other.serial).state == "Running", "other workflows' jobs go on"

    # The worker's next heartbeat is refused (so it kills the script); a late report too.
    beats = [(job.serial, lease.lease_id, "more"), (other.serial, other_lease.lease_id, "")]
    assert two.leases.heartbeats(beats) == [job.serial]
    refuse_late_reports(two, job, lease)
    assert two.jobs.get(job.serial).state == "Queued"
    assert "more" not in two.jobs.log(job.serial)
    assert two.leases.claim(worker_id(two), [], 5) == [], "not claimed while obsolete"

    two.workflows.set_state("Linear", "Started")
    again = two.leases.claim(worker_id(two), [], 5)
    assert sorted((j.serial, j.attempt) for j, _ in again) == [
        (job.serial, 1),
        (second.serial, 1),
    ], "the given-back attempts not counted"
    for claimed, claimed_lease in again:
        two.leases.complete(claimed.serial, claimed_lease.lease_id, {"value": 0})
    run_all(two, worker_id(two))
    assert {
        name: {t: j["state"] for t, j in cells.items()} for name, cells in live_jobs(two).items()
    } == {f"r{i}": dict.fromkeys(("Source", "Double", "Add"), "Done") for i in range(2)}
    with two.store.read() as conn:
        linear_states = {j.state for j in job_rows.jobs_of_workflow(conn, job.workflow_id)}
    assert linear_states == {"Done"}, "no Aborted (or Obsolete) job appears"


def test_the_give_back_and_the_state_change_are_one_transaction(
    linear: Runyard, monkeypatch: pytest.MonkeyPatch
) -> None:
    [(job, _)] = running_doubles(linear, 1)
    monkeypatch.setattr(workflow_rows, "set_workflow_state", lambda *args, **kwargs: False)
    with pytest.raises(Conflict, match="changed state meanwhile"):
        linear.workflows.set_state("Linear", "Obsolete")
    still = linear.jobs.get(job.serial)
    assert (still.state, still.attempt, still.worker) == ("Running", 1, "w1")
    assert GIVEN_BACK not in linear.jobs.log(job.serial)
    assert not [a for a in linear.activity() if a["action"] == "job.give_back"]


def run_reduced(ry: Runyard, wid: int) -> None:
    """Play a worker on Reduced (Double: x2; Table: count and total) until nothing is left."""
    while batch := ry.leases.claim(wid, [], 10):
        for job, lease in batch:
            values = job.inputs.get("values")
            outputs = (
                {"count": len(values), "total": sum(values)}
                if values is not None
                else {"value": 2 * job.inputs["value"]}
            )
            ry.leases.complete(job.serial, lease.lease_id, outputs)


RACERS = 12


def test_a_finish_racing_an_obsolete_either_finishes_first_or_is_given_back_never_both(
    two: Runyard,
) -> None:
    """With a reduce in the workflow: a finish (its run, its job, the study run) and the
    obsolete (the runs, the jobs, the study run, the workflow) never deadlock."""
    wid = worker_id(two)
    for i in range(RACERS):
        two.jobs.new_run("Reduced", "Source", outputs={"value": i}, name=f"r{i}")
    claimed = two.leases.claim(wid, [], RACERS)
    assert len(claimed) == RACERS
    outcomes: dict[int, str] = {}
    started = threading.Event()

    def finish() -> None:
        for n, (job, lease) in enumerate(reversed(claimed)):  # against the obsolete's order
            if n == RACERS // 3:
                started.set()
            try:
                two.leases.complete(
                    job.serial, lease.lease_id, {"value": 2 * job.inputs["value"]}, "done\n"
                )
                outcomes[job.serial] = "Done"
            except StaleLease:
                outcomes[job.serial] = "refused"

    def obsolete() -> None:
        started.wait(30)
        two.workflows.set_state("Reduced", "Obsolete")

    threads = [threading.Thread(target=finish), threading.Thread(target=obsolete)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(outcomes) == RACERS
    assert list(outcomes.values()).count("Done") >= RACERS // 3
    assert two.workflows.get("Reduced")[0].state == "Obsolete"
    for job, _ in claimed:
        now = two.jobs.get(job.serial)
        log = two.jobs.log(job.serial)
        if outcomes[job.serial] == "Done":
            assert (now.state, now.attempt, GIVEN_BACK in log) == ("Done", 1, False)
        else:
            assert (now.state, now.attempt, GIVEN_BACK in log) == ("Queued", 0, True)
            assert "done" not in log
    two.workflows.set_state("Reduced", "Started")
    run_reduced(two, wid)
    table = two.workflows.status("Reduced")["reduce"]["Table"]
    assert (table["state"], table["outputs"]["count"]) == ("Done", RACERS)


def test_an_obsolete_takes_the_runs_locks_first_and_the_workflows_without_blocking_a_finish(
    two: Runyard,
) -> None:
    """On PostgreSQL: while the obsolete waits for a run that a finish holds, that finish
    can still lock the study run (a reduce decision) and insert followers (which share the
    workflow's row), so the two never deadlock."""
    if two.store.engine.dialect.name != "postgresql":
        pytest.skip("row locks: PostgreSQL")
    for i in range(2):
        two.jobs.new_run("Reduced", "Source", outputs={"value": i}, name=f"r{i}")
    claimed = two.leases.claim(worker_id(two), [], 2)
    last_run = max(job.run_id for job, _ in claimed)
    reduced = workflow_id(two, "Reduced")
    done = threading.Event()

    def obsolete() -> None:
        two.workflows.set_state("Reduced", "Obsolete")
        done.set()

    with two.store.engine.connect() as finisher:
        finisher.execute(sa.text("SELECT id FROM runs WHERE id = :r FOR UPDATE"), {"r": last_run})
        thread = threading.Thread(target=obsolete)
        thread.start()
        assert not done.wait(1.0), "the obsolete waits for the run's lock"
        # What the finish does next; NOWAIT: fail at once instead of deadlocking.
        finisher.execute(
            sa.text("SELECT id FROM runs WHERE workflow_id = :w AND study FOR UPDATE NOWAIT"),
            {"w": reduced},
        )
        finisher.execute(
            sa.text("SELECT id FROM workflows WHERE id = :w FOR KEY SHARE NOWAIT"), {"w": reduced}
        )
        finisher.rollback()
        thread.join(timeout=30)
    assert done.is_set()
    assert {two.jobs.get(job.serial).state for job, _ in claimed} == {"Queued"}


def test_an_obsolete_does_not_wait_for_a_run_or_job_being_inserted(two: Runyard) -> None:
    """On PostgreSQL inserting a run or a job takes a key-share lock on its workflow's row,
    and then maybe the study run's lock (a reduce decision), which the obsolete may hold:
    the obsolete's lock on the workflow's row must not wait for the key-share one."""
    if two.store.engine.dialect.name != "postgresql":
        pytest.skip("row locks: PostgreSQL")
    two.jobs.new_run("Reduced", "Source", outputs={"value": 1}, name="r")
    [(job, _)] = two.leases.claim(worker_id(two), [], 1)
    done = threading.Event()

    def obsolete() -> None:
        two.workflows.set_state("Reduced", "Obsolete")
        done.set()

    with two.store.engine.connect() as inserter:
        inserter.execute(
            sa.text("SELECT id FROM workflows WHERE id = :w FOR KEY SHARE"),
            {"w": job.workflow_id},
        )
        thread = threading.Thread(target=obsolete)
        thread.start()
        finished = done.wait(10)
        inserter.rollback()
        thread.join(timeout=30)
    assert finished, "the obsolete did not wait for the insert"
    assert two.jobs.get(job.serial).state == "Queued"


def test_a_spawning_job_holding_its_row_does_not_deadlock_an_obsolete(linear: Runyard) -> None:
    """On PostgreSQL a spawn locks its job's row, then changes the workflow's row (a new
    task): the obsolete takes the jobs' rows before the workflow's."""
    if linear.store.engine.dialect.name != "postgresql":
        pytest.skip("row locks: PostgreSQL")
    [(job, _)] = running_doubles(linear, 1)
    done = threading.Event()

    def obsolete() -> None:
        linear.workflows.set_state("Linear", "Obsolete")
        done.set()

    with linear.store.engine.connect() as spawner:
        spawner.execute(
            sa.text("SELECT serial FROM jobs WHERE serial = :s FOR UPDATE"), {"s": job.serial}
        )
        thread = threading.Thread(target=obsolete)
        thread.start()
        assert not done.wait(1.0), "the obsolete waits for the job's row"
        spawner.execute(
            sa.text("UPDATE workflows SET tasks_version = tasks_version + 1 WHERE id = :w"),
            {"w": job.workflow_id},
        )
        spawner.commit()
        thread.join(timeout=30)
    assert done.is_set() and linear.jobs.get(job.serial).state == "Queued"


def test_a_running_reduce_job_of_an_obsoleted_workflow_is_given_back(two: Runyard) -> None:
    wid = worker_id(two)
    two.jobs.new_run("Reduced", "Source", outputs={"value": 1}, name="r")
    [(double, lease)] = two.leases.claim(wid, [], 1)
    two.leases.complete(double.serial, lease.lease_id, {"value": 2})
    [(table, table_lease)] = two.leases.claim(wid, [], 1)
    two.workflows.set_state("Reduced", "Obsolete")
    assert two.leases.heartbeats([(table.serial, table_lease.lease_id, "")]) == [table.serial]
    given_back = two.jobs.get(table.serial)
    assert (given_back.state, given_back.attempt, given_back.worker) == ("Queued", 0, None)
    two.workflows.set_state("Reduced", "Started")
    [(again, _)] = two.leases.claim(wid, [], 1)
    assert (again.serial, again.attempt, again.inputs["values"]) == (table.serial, 1, [2])


def test_stopping_a_workflow_lets_its_running_jobs_finish_and_starts_nothing_new(
    linear: Runyard,
) -> None:
    """Stop (back to Draft) is for editing tasks without losing the work in flight."""
    (job, lease), (second, _) = running_doubles(linear, 2)
    linear.jobs.new_run("Linear", "Source", outputs={"value": 7}, name="queued")
    linear.workflows.set_state("Linear", "Draft")
    assert linear.leases.heartbeats([(job.serial, lease.lease_id, "still")]) == []
    linear.leases.complete(job.serial, lease.lease_id, {"value": 0}, "done\n")
    done = linear.jobs.get(job.serial)
    assert (done.state, done.attempt) == ("Done", 1)
    assert GIVEN_BACK not in linear.jobs.log(job.serial)
    assert live_jobs(linear)["r0"]["Add"]["state"] == "Queued", "its follower is created"
    assert linear.leases.claim(worker_id(linear), [], 5) == [], "but nothing new starts"

    # A stopped workflow's Running jobs are given back when it is obsoleted.
    linear.workflows.set_state("Linear", "Obsolete")
    given_back = linear.jobs.get(second.serial)
    assert (given_back.state, given_back.attempt, given_back.worker) == ("Queued", 0, None)
    assert GIVEN_BACK in linear.jobs.log(second.serial)
    linear.workflows.set_state("Linear", "Started")
    run_all(linear, worker_id(linear))
    assert every_state(linear) == {"Done"}


def test_the_workers_next_heartbeat_refuses_the_jobs_of_an_obsoleted_workflow(
    server: Server,
) -> None:
    job, other = start_jobs(server, 2)
    r = server.client.post("/api/workflows/Linear/obsolete")
    assert r.status_code == 200 and r.json()["state"] == "Obsolete", r.text
    beats = [{"serial": j.serial, "lease": j.lease, "log": ""} for j in (job, other)]
    r = server.client.post(
        "/api/workers/heartbeat", json={"worker": "w1", "beats": beats}, headers=job.as_worker
    )
    assert r.status_code == 200 and sorted(r.json()["refused"]) == [job.serial, other.serial]
    shown = server.client.get(f"/api/jobs/{job.serial}").json()
    assert (shown["state"], shown["attempt"], shown["worker"]) == ("Queued", 0, None)
    server.client.post("/api/workflows/Linear/start").raise_for_status()
    claims = server.client.post(
        "/api/workers/claim", json={"worker": "w1", "max": 2}, headers=job.as_worker
    ).json()
    assert sorted(c["job"]["serial"] for c in claims) == [job.serial, other.serial]
