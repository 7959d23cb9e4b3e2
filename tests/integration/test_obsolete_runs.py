"""Obsoleting a run stops its running work, SQLite and PostgreSQL: its Running jobs are given
back (Queued, no lease, no worker, the attempt not counted), so their workers' next heartbeat
is refused and the scripts are killed; restoring the run lets them run again. A job that
finishes at the same moment either finishes first (its result and followers kept) or is
given back, never both."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa

from runyard.errors import StaleLease
from runyard.models import Job, Lease
from runyard.operations import Runyard
from runyard.states import JobState
from runyard.store import jobs as job_rows
from runyard.store.schema import jobs
from tests.integration.conftest import Server, start_jobs
from tests.integration.test_engine import live_jobs, run_all, worker_id

GIVEN_BACK = "given back"


def run_ids(ry: Runyard, workflow: str = "Linear") -> dict[str, int]:
    return {r["name"]: r["id"] for r in ry.workflows.status(workflow)["runs"]}


def lease_and_worker(ry: Runyard, serial: int) -> tuple[Any, Any]:
    with ry.store.read() as conn:
        row = conn.execute(
            sa.select(jobs.c.lease_id, jobs.c.worker_id).where(jobs.c.serial == serial)
        ).one()
    return row.lease_id, row.worker_id


def every_state(ry: Runyard) -> set[str]:
    with ry.store.read() as conn:
        return set(conn.execute(sa.text("SELECT DISTINCT state FROM jobs")).scalars())


def refuse_late_reports(ry: Runyard, job: Job, lease: Lease) -> None:
    """A given-back attempt can no longer complete, fail or release its job."""
    for late in (
        lambda: ry.leases.complete(job.serial, lease.lease_id, {"value": 0}),
        lambda: ry.leases.fail(job.serial, lease.lease_id, "killed"),
        lambda: ry.leases.release(job.serial, lease.lease_id),
    ):
        with pytest.raises(StaleLease):
            late()


def running_doubles(ry: Runyard, count: int) -> list[tuple[Job, Lease]]:
    """``count`` runs r0.. of Linear whose Double jobs are Running on worker w1."""
    for i in range(count):
        ry.jobs.new_run("Linear", "Source", outputs={"value": i}, name=f"r{i}")
    claimed = ry.leases.claim(worker_id(ry), [], count)
    assert len(claimed) == count
    return claimed


@dataclass(frozen=True)
class Scope:
    """What is obsoleted and restored: the run of a job of Linear, or the workflow Linear
    (see also test_obsolete_workflows.py); ``reader`` reads its Running jobs in the store."""

    name: str
    reader: str

    def obsolete(self, ry: Runyard, job: Job) -> None:
        if self.name == "run":
            ry.runs.set_obsolete(job.run_id, True)
        else:
            ry.workflows.set_state("Linear", "Obsolete")

    def restore(self, ry: Runyard, job: Job) -> None:
        if self.name == "run":
            ry.runs.set_obsolete(job.run_id, False)
        else:
            ry.workflows.set_state("Linear", "Started")


SCOPES = [Scope("run", "running_in_run"), Scope("workflow", "running_in_workflow")]
by_scope = pytest.mark.parametrize("scope", SCOPES, ids=[s.name for s in SCOPES])


def test_obsoleting_a_run_gives_its_running_jobs_back_and_restoring_runs_them_again(
    linear: Runyard,
) -> None:
    (job, lease), (other, other_lease) = running_doubles(linear, 2)
    linear.leases.heartbeat(job.serial, lease.lease_id, "working on it")
    run = run_ids(linear)["r0"]
    linear.runs.set_obsolete(run, True, actor="alice")

    given_back = linear.jobs.get(job.serial)
    assert (given_back.state, given_back.attempt, given_back.worker) == ("Queued", 0, None)
    assert given_back.started_at is None
    assert lease_and_worker(linear, job.serial) == (None, None)
    log = linear.jobs.log(job.serial)
    assert log.startswith("working on it\n-----") and GIVEN_BACK in log and "r0" in log
    [entry] = [a for a in linear.activity() if a["action"] == "job.give_back"]
    assert entry["job_serial"] == job.serial and entry["actor"] == "alice"
    assert "r0" in entry["message"] and "obsolete" in entry["message"]
    assert linear.jobs.get(other.serial).state == "Running", "other runs' jobs go on"

    # The worker's next heartbeat is refused (so it kills the script); a late report too.
    assert linear.leases.heartbeats([(job.serial, lease.lease_id, "more")]) == [job.serial]
    refuse_late_reports(linear, job, lease)
    assert linear.jobs.get(job.serial).state == "Queued"
    assert "more" not in linear.jobs.log(job.serial)
    assert linear.leases.claim(worker_id(linear), [], 5) == [], "not claimed while obsolete"

    linear.runs.set_obsolete(run, False)
    [(again, again_lease)] = linear.leases.claim(worker_id(linear), [], 5)
    assert (again.serial, again.attempt) == (job.serial, 1), "the given-back attempt not counted"
    linear.leases.complete(again.serial, again_lease.lease_id, {"value": 0})
    linear.leases.complete(other.serial, other_lease.lease_id, {"value": 2})
    run_all(linear, worker_id(linear))
    assert {
        name: {t: j["state"] for t, j in cells.items()} for name, cells in live_jobs(linear).items()
    } == {f"r{i}": dict.fromkeys(("Source", "Double", "Add"), "Done") for i in range(2)}
    assert every_state(linear) == {"Done"}, "no Aborted (or Obsolete) job appears"


@by_scope
def test_a_job_that_finished_before_it_was_obsoleted_keeps_its_result_and_followers(
    linear: Runyard, scope: Scope
) -> None:
    [(job, lease)] = running_doubles(linear, 1)
    linear.leases.complete(job.serial, lease.lease_id, {"value": 0})
    scope.obsolete(linear, job)
    done = linear.jobs.get(job.serial)
    assert (done.state, done.outputs, done.attempt) == ("Done", {"value": 0}, 1)
    assert GIVEN_BACK not in linear.jobs.log(job.serial)
    assert linear.leases.claim(worker_id(linear), [], 5) == []
    scope.restore(linear, job)
    assert run_all(linear, worker_id(linear)) == 1, "its follower Add was kept"
    assert live_jobs(linear)["r0"]["Add"]["outputs"] == {"value": 10}


@by_scope
def test_a_job_that_finishes_between_the_obsoletes_read_and_its_update_is_not_given_back(
    linear: Runyard, scope: Scope, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guarded update: the obsolete saw the job Running, but the finish landed first."""
    [(job, lease)] = running_doubles(linear, 1)
    read_running = getattr(job_rows, scope.reader)

    def finish_after_the_read(conn: sa.Connection, key: int) -> list[tuple[Job, str]]:
        seen: list[tuple[Job, str]] = read_running(conn, key)
        assert [(j.serial, lease_id) for j, lease_id in seen] == [(job.serial, lease.lease_id)]
        assert job_rows.set_state(
            conn,
            job.serial,
            JobState.DONE,
            [JobState.RUNNING],
            held_lease=lease.lease_id,
            outputs={"value": 0},
            lease_expires_at=None,
        )
        return seen

    monkeypatch.setattr(job_rows, scope.reader, finish_after_the_read)
    scope.obsolete(linear, job)
    done = linear.jobs.get(job.serial)
    assert (done.state, done.outputs, done.worker) == ("Done", {"value": 0}, "w1")
    assert GIVEN_BACK not in linear.jobs.log(job.serial)
    assert not [a for a in linear.activity() if a["action"] == "job.give_back"]


RACERS = 12


def test_a_finish_racing_an_obsolete_either_finishes_first_or_is_given_back_never_both(
    linear: Runyard,
) -> None:
    claimed = running_doubles(linear, RACERS)
    runs = run_ids(linear)
    outcomes: dict[int, str] = {}
    start = threading.Barrier(2)

    def finish() -> None:
        start.wait()
        for job, lease in claimed:
            try:
                linear.leases.complete(
                    job.serial, lease.lease_id, {"value": 2 * job.inputs["value"]}, "done\n"
                )
                outcomes[job.serial] = "Done"
            except StaleLease:
                outcomes[job.serial] = "refused"

    def obsolete() -> None:
        start.wait()
        for name in reversed(runs):  # meet the finisher halfway
            linear.runs.set_obsolete(runs[name], True)

    threads = [threading.Thread(target=finish), threading.Thread(target=obsolete)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(outcomes) == RACERS
    for job, _ in claimed:
        now = linear.jobs.get(job.serial)
        log = linear.jobs.log(job.serial)
        with linear.store.read() as conn:
            adds = conn.execute(
                sa.text("SELECT count(*) FROM jobs WHERE run_id = :r AND state <> 'Obsolete'"),
                {"r": now.run_id},
            ).scalar()
        if outcomes[job.serial] == "Done":
            assert (now.state, now.attempt, GIVEN_BACK in log) == ("Done", 1, False)
            assert adds == 3, "Source, Double and its follower Add"
        else:
            assert (now.state, now.attempt, GIVEN_BACK in log) == ("Queued", 0, True)
            assert "done" not in log and adds == 2, "no follower"
    for run_id in runs.values():
        linear.runs.set_obsolete(run_id, False)
    run_all(linear, worker_id(linear))
    assert every_state(linear) == {"Done"}
    assert len(live_jobs(linear)) == RACERS


def test_a_finish_waits_for_its_runs_lock_before_writing_the_job_so_it_cannot_deadlock(
    linear: Runyard,
) -> None:
    """On PostgreSQL an obsolete locks the run, then the job; a finish must take the same
    order (not write its log to the job first), or the two would wait for each other."""
    if linear.store.engine.dialect.name != "postgresql":
        pytest.skip("row locks: PostgreSQL")
    [(job, lease)] = running_doubles(linear, 1)
    finished = threading.Event()

    def finish() -> None:
        linear.leases.complete(job.serial, lease.lease_id, {"value": 0}, "the end\n")
        finished.set()

    lock_job = sa.text("SELECT serial FROM jobs WHERE serial = :s FOR UPDATE SKIP LOCKED")
    with linear.store.engine.connect() as holder, linear.store.engine.connect() as probe:
        holder.execute(sa.text("SELECT id FROM runs WHERE id = :r FOR UPDATE"), {"r": job.run_id})
        thread = threading.Thread(target=finish)
        thread.start()
        assert not finished.wait(1.0), "the finish waits for the run's lock"
        with probe.begin():
            assert probe.execute(lock_job, {"s": job.serial}).all(), "the job is not locked"
        holder.rollback()
        thread.join(timeout=30)
    assert finished.is_set() and linear.jobs.get(job.serial).state == "Done"


def test_the_workers_next_heartbeat_refuses_the_job_of_an_obsoleted_run(server: Server) -> None:
    job, other = start_jobs(server, 2)
    run_id = server.client.get(f"/api/jobs/{job.serial}").json()["run"]["id"]
    r = server.client.post(f"/api/runs/{run_id}/obsolete")
    assert r.status_code == 200 and r.json()["obsolete"] is True, r.text
    beats = [{"serial": j.serial, "lease": j.lease, "log": ""} for j in (job, other)]
    r = server.client.post(
        "/api/workers/heartbeat", json={"worker": "w1", "beats": beats}, headers=job.as_worker
    )
    assert r.status_code == 200 and r.json() == {"refused": [job.serial], "install": []}, r.text
    shown = server.client.get(f"/api/jobs/{job.serial}").json()
    assert (shown["state"], shown["attempt"], shown["worker"]) == ("Queued", 0, None)
    server.client.post(f"/api/runs/{run_id}/restore").raise_for_status()
    claims = server.client.post(
        "/api/workers/claim", json={"worker": "w1", "max": 1}, headers=job.as_worker
    ).json()
    assert [c["job"]["serial"] for c in claims] == [job.serial]


def test_a_workflow_whose_only_queued_jobs_are_in_obsolete_runs_is_idle(linear: Runyard) -> None:
    running_doubles(linear, 1)
    assert not linear.workflows.status("Linear")["idle"]
    linear.runs.set_obsolete(run_ids(linear)["r0"], True)
    assert linear.workflows.status("Linear")["idle"], "its given-back job waits for a restore"


# -- the reduce job of the workflow ----------------------------------------------------------


def test_obsoleting_a_run_replaces_a_running_reduce_that_read_it_and_restoring_again(
    reduced: Runyard,
) -> None:
    wid = worker_id(reduced)
    for i in range(2):
        reduced.jobs.new_run("Reduced", "Source", outputs={"value": i + 1}, name=f"r{i}")
    for job, lease in reduced.leases.claim(wid, [], 2):
        reduced.leases.complete(job.serial, lease.lease_id, {"value": 2 * job.inputs["value"]})
    [(table, lease)] = reduced.leases.claim(wid, [], 1)
    assert table.inputs["values"] == [2, 4]

    r1 = run_ids(reduced, "Reduced")["r1"]
    reduced.runs.set_obsolete(r1, True)
    assert reduced.leases.heartbeats([(table.serial, lease.lease_id, "")]) == [table.serial]
    assert reduced.jobs.get(table.serial).state == "Obsolete", "its inputs include r1"
    [(again, again_lease)] = reduced.leases.claim(wid, [], 1)
    assert again.inputs["values"] == [2]
    reduced.leases.complete(again.serial, again_lease.lease_id, {"count": 1, "total": 2})

    reduced.runs.set_obsolete(r1, False)
    [(last, _)] = reduced.leases.claim(wid, [], 1)
    assert last.inputs["values"] == [2, 4], "r1's result is back in the study table"


def test_obsoleting_a_run_with_running_upstream_work_lets_the_reduce_go_on_without_it(
    reduced: Runyard,
) -> None:
    wid = worker_id(reduced)
    for i in range(2):
        reduced.jobs.new_run("Reduced", "Source", outputs={"value": i + 1}, name=f"r{i}")
    (first, first_lease), (second, _) = reduced.leases.claim(wid, [], 2)
    reduced.leases.complete(first.serial, first_lease.lease_id, {"value": 2})
    reduced.runs.set_obsolete(second.run_id, True)
    assert reduced.jobs.get(second.serial).state == "Queued"
    [(table, table_lease)] = reduced.leases.claim(wid, [], 5)
    assert table.inputs["values"] == [2], "the given-back job does not hold the reduce up"
    reduced.leases.complete(table.serial, table_lease.lease_id, {"count": 1, "total": 2})
    reduced.runs.set_obsolete(second.run_id, False)
    [(double, double_lease)] = reduced.leases.claim(wid, [], 5)
    assert (double.serial, double.attempt) == (second.serial, 1)
    reduced.leases.complete(double.serial, double_lease.lease_id, {"value": 4})
    [(last, _)] = reduced.leases.claim(wid, [], 5)
    assert last.inputs["values"] == [2, 4]
