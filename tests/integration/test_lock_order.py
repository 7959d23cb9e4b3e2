"""One lock order for every change of jobs (PostgreSQL row locks; SQLite has one writer): the
runs first, in id order; then the jobs' rows; then the study run (a reduce decision); the
workflow's row last. Lease expiry follows it like a finish and an obsolete do, so that none of
them can deadlock with another: one waits for the other."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from runyard.models import Job
from runyard.operations import Runyard
from runyard.packages import load_package
from runyard.settings import Settings
from runyard.store import jobs as job_rows
from tests.conftest import WORKFLOWS, install_test_task_types
from tests.integration.test_engine import worker_id

ROUNDS = 20
RACING_RUNS = 4


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def reduced_once(settings: Settings, clock: Clock) -> Iterator[Runyard]:
    """The started workflow 'Reduced' (Source -> Double -> Table, a reduce) on a Runyard whose
    clock the test moves, with one attempt per job: an expired lease fails its job, which
    changes the reduce's decision."""
    ry = Runyard(replace(settings, max_attempts=1), now=clock).open()
    install_test_task_types(ry)
    ry.workflows.import_package(load_package(WORKFLOWS / "Reduced"))  # type: ignore[arg-type]
    ry.workflows.set_state("Reduced", "Started")
    yield ry
    ry.close()


def race(*actions: Callable[[], object]) -> list[BaseException]:
    """Run ``actions`` in threads that start together; what each raised."""
    start = threading.Barrier(len(actions))
    errors: list[BaseException] = []

    def act(action: Callable[[], object]) -> None:
        start.wait()
        try:
            action()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=act, args=(a,)) for a in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread still waits: a lock never freed"
    return errors


def live_table_jobs(ry: Runyard) -> list[Job]:
    """The live jobs of the reduce task Table (one at most)."""
    workflow, tasks = ry.workflows.get("Reduced")
    (table,) = [t for t in tasks if t.name == "Table"]
    with ry.store.read() as conn:
        return [j for j in job_rows.jobs_of_workflow(conn, workflow.id) if j.task_id == table.id]


def test_lease_expiry_racing_obsoletes_of_runs_and_the_workflow_never_deadlocks(
    reduced_once: Runyard, clock: Clock
) -> None:
    """Each round: a run whose Double is Done, and runs whose Doubles are Running; their
    leases run out while the racing runs are obsoleted (the last first) and the workflow is
    obsoleted. The expiry fails the Doubles and re-decides the reduce; on PostgreSQL it
    used to lock a job's row and then the study run without its run's lock, and deadlocked
    against an obsolete that held that run and job and waited for the study run."""
    ry = reduced_once
    wid = worker_id(ry)
    done_runs: list[int] = []
    for round_ in range(ROUNDS):
        done = ry.jobs.new_run("Reduced", "Source", outputs={"value": round_}, name=f"d{round_}")
        racing = [
            ry.jobs.new_run("Reduced", "Source", outputs={"value": i}, name=f"r{round_}-{i}")
            for i in range(RACING_RUNS)
        ]
        claimed = {job.run_id: (job, lease) for job, lease in ry.leases.claim(wid, [], 50)}
        finished, lease = claimed.pop(done.run_id)
        ry.leases.complete(finished.serial, lease.lease_id, {"value": 2 * round_})
        done_runs.append(done.run_id)
        assert sorted(claimed) == [r.run_id for r in racing]
        clock.now += timedelta(seconds=ry.settings.lease_seconds + 1)

        def obsolete_runs(runs: list[int] = sorted(claimed, reverse=True)) -> None:
            for run_id in runs:
                ry.runs.set_obsolete(run_id, True)

        errors = race(
            ry.leases.expire_leases,
            obsolete_runs,
            lambda: ry.workflows.set_state("Reduced", "Obsolete"),
        )
        assert errors == [], f"round {round_}: {errors!r}"
        for job, _ in claimed.values():
            now = ry.jobs.get(job.serial)
            assert (now.state, now.attempt) in (("Failed", 1), ("Queued", 0)), now
            assert now.state != "Failed" or "lease expired" in now.error
        # The reduce reads exactly the runs with a Done Double, whoever decided last.
        (table,) = live_table_jobs(ry)
        assert table.state == "Queued"
        assert [r["id"] for r in table.metadata["runs"]] == done_runs
        ry.workflows.set_state("Reduced", "Started")
