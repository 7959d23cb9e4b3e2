"""Reduce tasks on the real store, SQLite and PostgreSQL: one job per workflow, queued when no
active run has upstream work pending, replaced (never doubled) when the results change."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from runyard.errors import Conflict, StaleLease
from runyard.models import Job
from runyard.operations import Runyard
from tests.integration.test_engine import worker_id


def reduce_jobs(ry: Runyard) -> list[Job]:
    """Every job of the Table task, live or not, by serial."""
    [table] = [t for t in ry.workflows.get("Reduced")[1] if t.name == "Table"]
    with ry.store.read() as conn:
        serials = conn.execute(
            sa.text("SELECT serial FROM jobs WHERE task_id = :t ORDER BY serial"), {"t": table.id}
        ).scalars()
        return [ry.jobs.get(s) for s in serials]


def live_reduce(ry: Runyard) -> Job | None:
    live = [j for j in reduce_jobs(ry) if j.state != "Obsolete"]
    assert len(live) <= 1, live
    return live[0] if live else None


def double_all(ry: Runyard, wid: int, limit: int = 1000) -> list[Job]:
    """Claim and complete up to ``limit`` Double jobs (not the reduce job)."""
    done = []
    for job, lease in ry.leases.claim(wid, [], limit):
        if "values" in job.inputs:  # the reduce job: give it back
            ry.leases.release(job.serial, lease.lease_id)
            continue
        done.append(
            ry.leases.complete(job.serial, lease.lease_id, {"value": job.inputs["value"] * 2})
        )
    return done


def test_the_reduce_job_is_queued_once_no_run_has_upstream_work_pending(reduced: Runyard) -> None:
    for i in range(3):
        reduced.jobs.new_run("Reduced", "Source", outputs={"value": i + 1}, name=f"r{i}")
    wid = worker_id(reduced)
    [(first, lease)] = reduced.leases.claim(wid, [], 1)
    reduced.leases.complete(first.serial, lease.lease_id, {"value": 2})
    assert live_reduce(reduced) is None, "two Double jobs are still pending"
    double_all(reduced, wid)
    job = live_reduce(reduced)
    assert job is not None and job.state == "Queued"
    assert job.inputs == {"values": [2, 4, 6], "title": "double"}
    assert [r["name"] for r in job.metadata["runs"]] == ["r0", "r1", "r2"]
    status = reduced.workflows.status("Reduced")
    assert [r["name"] for r in status["runs"]] == ["r0", "r1", "r2"], "the study run is hidden"
    assert len(reduced.spawns.sort_orders(job.serial)) == 3, "also from spawning scripts"
    assert status["reduce"]["Table"]["state"] == "Queued" and not status["idle"]


def test_new_results_replace_the_reduce_job_by_exactly_one_new_one(reduced: Runyard) -> None:
    wid = worker_id(reduced)
    for i in range(2):
        reduced.jobs.new_run("Reduced", "Source", outputs={"value": i + 1}, name=f"r{i}")
    double_all(reduced, wid)
    first = live_reduce(reduced)
    assert first is not None
    [(claimed, lease)] = reduced.leases.claim(wid, [], 1)
    assert claimed.serial == first.serial
    reduced.leases.complete(first.serial, lease.lease_id, {"count": 2, "total": 6})

    reduced.jobs.new_run("Reduced", "Source", outputs={"value": 10}, name="late")
    kept = live_reduce(reduced)
    assert kept is not None and (kept.serial, kept.state) == (first.serial, "Done"), (
        "the Done reduce job stays while the new run's Double is pending"
    )
    double_all(reduced, wid)
    jobs = reduce_jobs(reduced)
    assert [(j.serial == first.serial, j.state) for j in jobs] == [
        (True, "Obsolete"),
        (False, "Queued"),
    ]
    assert jobs[1].inputs["values"] == [2, 4, 20]


def test_a_reduce_job_running_when_new_work_arrives_is_obsoleted_and_cannot_complete(
    reduced: Runyard,
) -> None:
    wid = worker_id(reduced)
    reduced.jobs.new_run("Reduced", "Source", outputs={"value": 1}, name="r0")
    double_all(reduced, wid)
    [(running, lease)] = reduced.leases.claim(wid, [], 1)
    reduced.jobs.new_run("Reduced", "Source", outputs={"value": 2}, name="r1")
    assert live_reduce(reduced) is None, "its inputs miss r1: obsolete at once"
    with pytest.raises(StaleLease):
        reduced.leases.complete(running.serial, lease.lease_id, {"count": 1, "total": 2})
    double_all(reduced, wid)
    job = live_reduce(reduced)
    assert job is not None and job.inputs["values"] == [2, 4]


def test_paused_and_failed_runs_are_left_out_and_changes_nothing_when_unchanged(
    reduced: Runyard,
) -> None:
    wid = worker_id(reduced)
    for i in range(3):
        reduced.jobs.new_run("Reduced", "Source", outputs={"value": i + 1}, name=f"r{i}")
    runs = {r["name"]: r["id"] for r in reduced.workflows.status("Reduced")["runs"]}
    reduced.jobs.set_priority(runs["r2"], "paused")
    claimed = reduced.leases.claim(wid, [], 10)
    assert len(claimed) == 2, "the paused run's job is not claimed"
    (job0, lease0), (job1, lease1) = claimed
    reduced.leases.complete(job0.serial, lease0.lease_id, {"value": 2})
    reduced.leases.fail(job1.serial, lease1.lease_id, "broken scan")
    job = live_reduce(reduced)
    assert job is not None and job.inputs["values"] == [2]
    assert [r["name"] for r in job.metadata["runs"]] == ["r0"]
    reduced.jobs.set_priority(runs["r2"], "normal")  # pending again: the Queued one goes
    assert live_reduce(reduced) is None
    double_all(reduced, wid)
    job = live_reduce(reduced)
    assert job is not None and job.inputs["values"] == [2, 6]
    serial = job.serial
    reduced.jobs.set_priority(runs["r0"], "high")  # nothing a reduce reads changed
    assert live_reduce(reduced) is not None and live_reduce(reduced).serial == serial  # type: ignore[union-attr]


def test_restarting_a_reduce_job_queues_a_new_one_from_the_same_results(
    reduced: Runyard,
) -> None:
    wid = worker_id(reduced)
    reduced.jobs.new_run("Reduced", "Source", outputs={"value": 1}, name="r0")
    double_all(reduced, wid)
    first = live_reduce(reduced)
    assert first is not None
    new = reduced.jobs.restart_new_job(first.serial)
    assert new.serial != first.serial and new.inputs == first.inputs
    [(claimed, lease)] = reduced.leases.claim(wid, [], 1)
    reduced.leases.complete(claimed.serial, lease.lease_id, {"count": 1, "total": 2})
    reduced.jobs.new_run("Reduced", "Source", outputs={"value": 2}, name="r1")
    with pytest.raises(Conflict, match="upstream work pending"):
        reduced.jobs.restart_new_job(new.serial)


def test_racing_completions_never_make_two_reduce_jobs_nor_one_that_misses_a_run(
    reduced: Runyard,
) -> None:
    wid, per_round = worker_id(reduced), 12
    for round_ in range(4):
        for i in range(per_round):
            value = round_ * per_round + i
            reduced.jobs.new_run("Reduced", "Source", outputs={"value": value}, name=f"r{value:03}")
        claimed = [c for c in reduced.leases.claim(wid, [], 100) if "values" not in c[0].inputs]
        assert len(claimed) == per_round
        barrier = threading.Barrier(per_round)
        errors: list[BaseException] = []

        def complete(job: Job, lease_id: str) -> None:
            try:
                barrier.wait()
                reduced.leases.complete(job.serial, lease_id, {"value": job.inputs["value"] * 2})
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=complete, args=(j, le.lease_id)) for j, le in claimed]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
        live = [j for j in reduce_jobs(reduced) if j.state != "Obsolete"]
        assert len(live) == 1, [(j.serial, j.state) for j in reduce_jobs(reduced)]
        assert live[0].inputs["values"] == [2 * v for v in range((round_ + 1) * per_round)]


def test_a_failed_reduce_job_is_replaced_when_a_run_is_obsoleted(reduced: Runyard) -> None:
    """A study table that failed on one bad run is made again once that run is obsoleted."""
    wid = worker_id(reduced)
    runs = [
        reduced.jobs.new_run("Reduced", "Source", outputs={"value": i + 1}, name=f"r{i}")
        for i in range(3)
    ]
    double_all(reduced, wid)
    failed = live_reduce(reduced)
    assert failed is not None
    [(claimed, lease)] = reduced.leases.claim(wid, [], 1)
    reduced.leases.fail(claimed.serial, lease.lease_id, "r1 has no usable value")
    assert reduced.jobs.get(failed.serial).state == "Failed"

    reduced.runs.set_obsolete(runs[1].run_id, True)
    jobs = reduce_jobs(reduced)
    assert [(j.serial, j.state) for j in jobs] == [
        (failed.serial, "Obsolete"),
        (jobs[-1].serial, "Queued"),
    ]
    assert jobs[-1].inputs["values"] == [2, 6]
