"""A worker that registers again under its name (it started again) gets the jobs it held
before given back at once, on SQLite and PostgreSQL: Queued again, the lost attempt counted,
Failed once it was the last; another worker's jobs and later leases are left alone."""

from __future__ import annotations

from runyard.operations import Runyard
from tests.integration.test_engine import worker_id


def started_again(ry: Runyard, name: str, holds: list[int] | None = None) -> None:
    """Worker ``name`` registers as a worker process does when it starts: holding nothing."""
    ry.workers.register(name, provides=[], max_jobs=4, holds=[] if holds is None else holds)


def claim_double(ry: Runyard, wid: int) -> tuple[int, str]:
    """Claim the first claimable job (a Double): (serial, lease)."""
    ((job, lease),) = ry.leases.claim(wid, [], 1)
    return job.serial, lease.lease_id


def test_registering_again_queues_the_jobs_the_worker_held_at_once(linear: Runyard) -> None:
    ry = linear
    ry.jobs.new_run("Linear", "Source", outputs={"value": 1}, name="a")
    ry.jobs.new_run("Linear", "Source", outputs={"value": 2}, name="b")
    mine, other = worker_id(ry, "pc-1"), worker_id(ry, "pc-2")
    serial, lease = claim_double(ry, mine)
    kept, _ = claim_double(ry, other)
    started_again(ry, "pc-1")
    job = ry.jobs.get(serial)
    assert (job.state, job.attempt, job.worker) == ("Queued", 1, None)
    assert "worker pc-1 started again" in ry.jobs.log(serial)
    assert ry.jobs.get(kept).state == "Running", "another worker's job stays"
    again, new_lease = claim_double(ry, mine)
    assert again == serial and new_lease != lease
    assert ry.jobs.get(serial).attempt == 2


def test_jobs_the_worker_still_holds_or_a_registration_without_holds_are_left_alone(
    linear: Runyard,
) -> None:
    ry = linear
    for value in (1, 2):
        ry.jobs.new_run("Linear", "Source", outputs={"value": value}, name=f"r{value}")
    mine = worker_id(ry, "pc-1")
    first, _ = claim_double(ry, mine)
    second, _ = claim_double(ry, mine)
    worker_id(ry, "pc-1")  # no holds: an older worker, or a client that does not say
    started_again(ry, "pc-1", holds=[second])
    assert [ry.jobs.get(s).state for s in (first, second)] == ["Queued", "Running"]


def test_a_job_lost_in_its_last_attempt_fails(linear: Runyard) -> None:
    ry = linear
    ry.jobs.new_run("Linear", "Source", outputs={"value": 1}, name="a")
    mine = worker_id(ry, "pc-1")
    for _ in range(ry.settings.max_attempts):
        serial, _ = claim_double(ry, mine)
        started_again(ry, "pc-1")
    job = ry.jobs.get(serial)
    assert (job.state, job.attempt) == ("Failed", ry.settings.max_attempts)
    assert job.error and "started again" in job.error
