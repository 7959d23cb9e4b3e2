"""The counts of jobs and runs that the database's triggers keep (runyard.store.counts),
SQLite and PostgreSQL: after every kind of change they equal what counting the rows gives,
before and after the changes are folded (PostgreSQL), also when several threads change
jobs at once."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from runyard.operations import Runyard
from runyard.operations.spawn_batch import JobSpawn
from runyard.states import JobState
from runyard.store import counts
from runyard.store.schema import count_changes, jobs, runs
from tests.integration.test_engine import worker_id
from tests.integration.test_reduce_stale import finish_all


def counted_rows(ry: Runyard, workflow_id: int) -> dict[tuple[int, str], int]:
    """What the counts must be, from the rows themselves."""
    with ry.store.read() as conn:
        by_task = conn.execute(
            select(jobs.c.task_id, jobs.c.state, func.count())
            .where(jobs.c.workflow_id == workflow_id)
            .group_by(jobs.c.task_id, jobs.c.state)
        )
        found = {(int(t), str(s)): int(n) for t, s, n in by_task}
        by_kind = conn.execute(
            select(runs.c.obsolete, func.count())
            .where(runs.c.workflow_id == workflow_id, runs.c.study.is_(False))
            .group_by(runs.c.obsolete)
        )
        for obsolete, n in by_kind:
            found[(counts.NOT_A_TASK, counts.OBSOLETE_RUNS if obsolete else counts.RUNS)] = n
        # The runs (any: live, obsolete, the study run) with at least one job in a state.
        by_state = conn.execute(
            select(jobs.c.state, func.count(jobs.c.run_id.distinct()))
            .where(jobs.c.workflow_id == workflow_id)
            .group_by(jobs.c.state)
        )
        for state, n in by_state:
            found[(counts.RUNS_IN_STATE, str(state))] = int(n)
    return found


def kept(ry: Runyard, workflow_id: int) -> dict[tuple[int, str], int]:
    with ry.store.read() as conn:
        read = counts.read(conn, workflow_id)
    found = {(t, s): n for t, by_state in read.by_task.items() for s, n in by_state.items()}
    for kind in (counts.RUNS, counts.OBSOLETE_RUNS):
        if read[kind]:
            found[(counts.NOT_A_TASK, kind)] = read[kind]
    for state, n in read.runs_in_state.items():
        found[(counts.RUNS_IN_STATE, state)] = n
    with ry.store.read() as conn:
        for state in JobState:  # the reading of one state, as the runs table's count does
            alone = conn.execute(select(counts.runs_with_job_in(workflow_id, state))).scalar()
            assert alone == read.runs_in_state.get(state, 0), state
    return found


def check(ry: Runyard, workflow_id: int) -> None:
    """The counts as read equal the rows' counts, before and after a fold."""
    assert kept(ry, workflow_id) == counted_rows(ry, workflow_id)
    while ry.views.fold_counts():
        pass
    with ry.store.read() as conn:
        left = conn.execute(select(func.count()).select_from(count_changes)).scalar_one()
    assert left == 0
    assert kept(ry, workflow_id) == counted_rows(ry, workflow_id)


def job_changes(ry: Runyard, workflow_id: int) -> int:
    """The count of job changes: grows with every change of a job's state, and every job
    made or deleted, before and after a fold."""
    with ry.store.read() as conn:
        before = counts.read(conn, workflow_id)[counts.JOB_CHANGES]
    ry.views.fold_counts()
    with ry.store.read() as conn:
        assert counts.read(conn, workflow_id)[counts.JOB_CHANGES] == before
    return before


def test_the_counts_follow_every_kind_of_change(linear: Runyard) -> None:
    ry = linear
    workflow, tasks = ry.workflows.get("Linear")
    check(ry, workflow.id)
    made = [
        ry.jobs.new_run("Linear", "Source", outputs={"value": i}, name=f"r{i}") for i in range(6)
    ]
    ry.jobs.new_run("Linear", "Source", name="waiting")  # its Source job waits for a user
    check(ry, workflow.id)

    # Claimed, Running, failed, Done.
    wid = worker_id(ry)
    changes = job_changes(ry, workflow.id)
    claimed = ry.leases.claim(wid, [], 3)
    assert job_changes(ry, workflow.id) > changes
    ry.leases.fail(claimed[0][0].serial, claimed[0][1].lease_id, "boom")
    ry.leases.complete(claimed[1][0].serial, claimed[1][1].lease_id, {"value": 2})
    check(ry, workflow.id)

    # Restarted: the failed job Obsolete, a new one Queued; the jobs made count it.
    with ry.store.read() as conn:
        made_before = counts.read(conn, workflow.id)[counts.JOBS_MADE]
    changes = job_changes(ry, workflow.id)
    ry.runs.restart_new_job(claimed[0][0].serial)
    assert job_changes(ry, workflow.id) > changes
    with ry.store.read() as conn:
        assert counts.read(conn, workflow.id)[counts.JOBS_MADE] == made_before + 1
    check(ry, workflow.id)

    # Spawned in one statement: new runs, each with a follower job.
    spawner, lease = claimed[2]
    source = next(t for t in tasks if t.name == "Source")
    ry.spawns.spawn_jobs(
        spawner.serial, [JobSpawn(task_id=source.id, outputs={"value": 100 + i}) for i in range(5)]
    )
    ry.leases.complete(spawner.serial, lease.lease_id, {"value": 4})
    check(ry, workflow.id)

    # Runs made obsolete and back, then purged with their jobs.
    ry.runs.set_obsolete(made[0].run_id, True)
    ry.runs.set_obsolete(made[1].run_id, True)
    ry.runs.set_obsolete(made[1].run_id, False)
    check(ry, workflow.id)
    finish_all(ry)
    ry.purge.purge(dry_run=False, workflow="Linear")
    check(ry, workflow.id)

    # A run renamed: no count of runs changes, but the runs changed.
    ry.runs.rename(made[2].run_id, "renamed")
    check(ry, workflow.id)

    # A task deleted with its jobs.
    ry.workflows.set_state("Linear", "Draft")
    changes = job_changes(ry, workflow.id)
    ry.workflows.delete_task("Linear", "Add")
    assert job_changes(ry, workflow.id) > changes
    check(ry, workflow.id)
    with ry.store.read() as conn:
        read = counts.read(conn, workflow.id)
    # 7 runs made, 5 spawned; 3 obsolete flips; one obsolete and purged; one renamed.
    assert (read[counts.RUNS], read[counts.OBSOLETE_RUNS], read[counts.RUNS_CHANGED]) == (11, 0, 17)
    assert "Add" not in {t.name for t in ry.workflows.get("Linear")[1]}


def test_counts_stay_exact_when_threads_change_jobs_at_once(linear: Runyard) -> None:
    ry = linear
    workflow, _ = ry.workflows.get("Linear")
    for i in range(40):
        ry.jobs.new_run("Linear", "Source", outputs={"value": i}, name=f"r{i}")
    wid = worker_id(ry)
    claimed = ry.leases.claim(wid, [], 40)
    errors: list[BaseException] = []

    def finish(part: int) -> None:
        try:
            for job, lease in claimed[part::4]:
                ry.leases.complete(job.serial, lease.lease_id, {"value": 1})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=finish, args=(part,)) for part in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    check(ry, workflow.id)
