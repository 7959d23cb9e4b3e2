"""Automatic retries per task type (``"retries": N`` in its metadata.json), SQLite and
PostgreSQL: a job whose script fails is restarted as a new job up to N times, each attempt
kept (Obsolete, its successor naming it); the last failure stays Failed."""

from __future__ import annotations

from runyard.models import Job
from runyard.operations import Runyard
from tests.integration.test_engine import worker_id
from tests.integration.test_study import cells, started

FLAKY_INPUTS = [
    {"key": "value", "source": {"mode": "output", "task": "Source", "key": "value"}},
    {"key": "counter", "source": {"mode": "fixed", "fixed_value": "/nonexistent/counter"}},
    {"key": "failures", "source": {"mode": "fixed", "fixed_value": 2}},
]


def with_flaky(ry: Runyard) -> Job:
    """Linear with a task Flaky (Test.Flaky: retries 2) after Source; one run. Its job."""
    started(ry, "Linear")
    ry.workflows.add_task("Linear", "Flaky", task_type_name="Test.Flaky", inputs=FLAKY_INPUTS)
    ry.jobs.new_run("Linear", "Source", outputs={"value": 1}, name="r")
    return ry.jobs.get(cells(ry, "Linear")["r"]["Flaky"]["serial"])


def fail_flaky(ry: Runyard, error: str = "boom") -> Job:
    """Claim the Queued Flaky job and report its failure; the job as the report left it."""
    wid = worker_id(ry)
    [(job, lease)] = [(j, lease) for j, lease in ry.leases.claim(wid, [], 10)
                      if "failures" in j.inputs]  # fmt: skip
    return ry.leases.fail(job.serial, lease.lease_id, error)


def test_a_failed_job_is_retried_as_a_new_job_up_to_the_task_types_retries(ry: Runyard) -> None:
    first = with_flaky(ry)
    assert ry.task_types.find("Test.Flaky")[0].retries == 2
    failed = fail_flaky(ry)
    assert failed.state == "Failed", "the report answers the failure as it was recorded"
    second = ry.jobs.get(cells(ry, "Linear")["r"]["Flaky"]["serial"])
    assert second.serial > first.serial and second.state == "Queued"
    assert second.metadata == {"retry_of": first.serial, "retry": 1}
    assert ry.jobs.get(first.serial).state == "Obsolete", "the failed attempt is kept, Obsolete"
    assert ry.jobs.get(first.serial).error == "boom"

    fail_flaky(ry)
    third = ry.jobs.get(cells(ry, "Linear")["r"]["Flaky"]["serial"])
    assert third.metadata == {"retry_of": second.serial, "retry": 2}
    fail_flaky(ry, "still broken")
    last = cells(ry, "Linear")["r"]["Flaky"]
    assert (last["serial"], last["state"]) == (third.serial, "Failed"), "no retry left"
    retries = [a for a in ry.activity(50) if a["action"] == "job.retry"]
    assert [a["job_serial"] for a in reversed(retries)] == [second.serial, third.serial]
    assert "retry 1 of 2" in retries[-1]["message"]


def test_a_retry_that_succeeds_creates_the_followers_and_a_restart_starts_afresh(
    ry: Runyard,
) -> None:
    with_flaky(ry)
    fail_flaky(ry)
    wid = worker_id(ry)
    [(job, lease)] = [(j, lease) for j, lease in ry.leases.claim(wid, [], 10)
                      if "failures" in j.inputs]  # fmt: skip
    assert ry.leases.complete(job.serial, lease.lease_id, {"value": 2}).state == "Done"
    assert ry.jobs.get(job.serial).metadata["retry"] == 1
    restarted = ry.jobs.restart_new_job(job.serial)
    assert "retry" not in restarted.metadata, "a user's restart is a first attempt again"


def test_an_aborted_job_is_not_retried(ry: Runyard) -> None:
    first = with_flaky(ry)
    ry.jobs.update_state(first.serial, "Aborted")
    cell = cells(ry, "Linear")["r"]["Flaky"]
    assert (cell["serial"], cell["state"]) == (first.serial, "Aborted")
