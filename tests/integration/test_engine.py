"""The job engine on the real store, on SQLite and PostgreSQL (the contract suite)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from runyard.errors import Conflict, IllegalTransition, InvalidInput, NotFound, StaleLease
from runyard.models import Entity, Job, Lease
from runyard.operations import Runyard
from runyard.packages import load_package
from runyard.settings import Settings
from tests.conftest import WORKFLOWS, install_test_task_types


def worker_id(ry: Runyard, name: str = "w1", provides: list[str] | None = None) -> int:
    return ry.workers.register(name, provides=provides or [], max_jobs=4).id


def run_all(ry: Runyard, wid: int) -> int:
    """Play a worker: claim and complete jobs (Double: x2, Add: +offset) until none is left."""
    count = 0
    while claimed := ry.leases.claim(wid, [], 10):
        for job, lease in claimed:
            value = job.inputs["value"]
            result = value * 2 if "offset" not in job.inputs else value + job.inputs["offset"]
            ry.leases.complete(job.serial, lease.lease_id, {"value": result})
            count += 1
    return count


def live_jobs(ry: Runyard, workflow: str = "Linear") -> dict[str, dict[str, dict[str, object]]]:
    return {r["name"]: r["jobs"] for r in ry.workflows.status(workflow)["runs"]}


def test_new_run_creates_a_done_source_job_and_queues_its_follower(linear: Runyard) -> None:
    job = linear.jobs.new_run("Linear", "Source", outputs={"value": 3}, name="r1")
    assert job.state == "Done" and job.outputs == {"value": 3}
    jobs = live_jobs(linear)["r1"]
    assert jobs["Double"]["state"] == "Queued"
    assert "Add" not in jobs


def test_a_linear_workflow_completes_with_each_follower_created_once(linear: Runyard) -> None:
    for i in range(5):
        linear.jobs.new_run("Linear", "Source", outputs={"value": i}, name=f"r{i}")
    assert run_all(linear, worker_id(linear)) == 10
    runs = live_jobs(linear)
    assert [runs[f"r{i}"]["Add"]["outputs"] for i in range(5)] == [
        {"value": 2 * i + 10} for i in range(5)
    ]
    with linear.store.read() as conn:
        total = conn.execute(sa.text("SELECT count(*) FROM jobs")).scalar()
    assert total == 15


def test_the_database_refuses_a_second_live_job_for_a_task_in_a_run(linear: Runyard) -> None:
    linear.jobs.new_run("Linear", "Source", outputs={"value": 1})
    with pytest.raises(sa.exc.IntegrityError), linear.store.write() as conn:
        row = conn.execute(sa.text("SELECT * FROM jobs WHERE state = 'Queued'")).mappings().one()
        values = {k: v for k, v in row.items() if k != "serial"}
        conn.execute(
            sa.text(
                "INSERT INTO jobs (workflow_id, run_id, task_id, task_type_id, state, inputs, "
                "outputs, metadata, error, log, attempt, created_at) VALUES (:workflow_id, "
                ":run_id, :task_id, :task_type_id, 'Queued', '{}', '{}', '{}', '', '', 0, "
                ":created_at)"
            ),
            values,
        )


def test_claims_follow_priority_then_run_sort_order_and_skip_paused_runs(linear: Runyard) -> None:
    jobs = [linear.jobs.new_run("Linear", "Source", outputs={"value": i}) for i in range(4)]
    linear.jobs.set_priority(jobs[2].run_id, "high")
    linear.jobs.set_priority(jobs[0].run_id, "paused")
    claimed = linear.leases.claim(worker_id(linear), [], 10)
    assert [j.run_id for j, _ in claimed] == [jobs[2].run_id, jobs[1].run_id, jobs[3].run_id]


def test_claims_follow_priority_for_jobs_made_before_and_after_the_priority_changed(
    linear: Runyard,
) -> None:
    """The claim order is kept on each job (its run's priority and sort order): a change of
    priority reorders the run's Queued jobs, and its later jobs are made in that order."""
    first, second = (linear.jobs.new_run("Linear", "Source", outputs={"value": i}) for i in (1, 2))
    wid = worker_id(linear)
    linear.jobs.set_priority(second.run_id, "high")
    doubles = linear.leases.claim(wid, [], 2)
    assert [j.run_id for j, _ in doubles] == [second.run_id, first.run_id]
    for job, lease in doubles:
        linear.leases.complete(job.serial, lease.lease_id, {"value": job.inputs["value"] * 2})
    linear.jobs.set_priority(second.run_id, "normal")
    linear.jobs.set_priority(first.run_id, "high")
    adds = linear.leases.claim(wid, [], 2)
    assert [j.run_id for j, _ in adds] == [first.run_id, second.run_id]


def test_a_report_wakes_waiting_claims_only_when_it_leaves_new_work_unclaimed(
    linear: Runyard,
) -> None:
    """Waiting claims (long polls) are woken after a report only if a follower it made was
    not claimed by the same report: a chain whose reports claim their own followers wakes
    nobody for nothing."""
    for value in (1, 2):
        linear.jobs.new_run("Linear", "Source", outputs={"value": value})
    worker = linear.workers.register("w1", provides=[], max_jobs=4)
    (first, first_lease), (second, second_lease) = linear.leases.claim(worker.id, [], 2)

    def report(job: Job, lease: Lease, claim: int) -> list[Job]:
        result = {"serial": job.serial, "lease": lease.lease_id, "ok": True}
        done = result | {"outputs": {"value": job.inputs["value"] * 2}}
        answers, claimed = linear.leases.report([done], claim=worker, limit=claim)
        assert answers == [{"serial": job.serial, "state": "Done"}]
        return [j for j, _ in claimed]

    before = linear.changed.version
    [follower] = report(first, first_lease, claim=1)
    assert follower.run_id == first.run_id
    assert linear.changed.version == before, "its follower was claimed at once"
    assert report(second, second_lease, claim=0) == []
    assert linear.changed.version == before + 1, "a follower is left for the others"


def test_a_claim_takes_exactly_as_many_jobs_as_it_asks_for_in_claim_order(
    linear: Runyard,
) -> None:
    """One statement claims (PostgreSQL could otherwise scan its candidates again while
    updating them and take more than asked for)."""
    runs = [linear.jobs.new_run("Linear", "Source", outputs={"value": i}) for i in range(30)]
    wid = worker_id(linear)
    taken: list[int] = []
    for asked in (1, 3, 7):
        claimed = linear.leases.claim(wid, [], asked)
        assert len(claimed) == asked
        taken += [job.run_id for job, _ in claimed]
    assert taken == [job.run_id for job in runs[:11]]
    assert len({lease.lease_id for _, lease in linear.leases.claim(wid, [], 50)}) == 19


def test_new_runs_of_a_stopped_workflow_wake_no_claim_and_starting_it_does(
    linear: Runyard,
) -> None:
    linear.workflows.set_state("Linear", "Draft")
    before = linear.changed.version
    linear.jobs.new_run("Linear", "Source", outputs={"value": 1})
    assert linear.changed.version == before, "no worker may take its job yet"
    linear.workflows.set_state("Linear", "Started")
    assert linear.changed.version == before + 1, "now they may: waiting claims look again"
    linear.jobs.new_run("Linear", "Source", outputs={"value": 2})
    assert linear.changed.version == before + 2


def test_jobs_of_a_workflow_that_is_not_started_are_not_claimed(linear: Runyard) -> None:
    linear.jobs.new_run("Linear", "Source", outputs={"value": 1})
    linear.workflows.set_state("Linear", "Draft")
    wid = worker_id(linear)
    assert linear.leases.claim(wid, [], 10) == []
    linear.workflows.set_state("Linear", "Started")
    assert len(linear.leases.claim(wid, [], 10)) == 1


def test_a_worker_claims_only_jobs_whose_dependencies_it_provides(
    linear: Runyard, tmp_path: object
) -> None:
    linear.jobs.new_run("Linear", "Source", outputs={"value": 1})
    with linear.store.write() as conn:
        conn.execute(
            sa.text("UPDATE task_types SET dependencies = :deps WHERE name = 'Test.Double'"),
            {"deps": '[{"name": "numpy", "version": "2.0.0.0"}]'},
        )
    assert linear.leases.claim(worker_id(linear, "plain"), [], 10) == []
    wid = worker_id(linear, "numeric", provides=["numpy"])
    assert len(linear.leases.claim(wid, ["numpy"], 10)) == 1


def test_a_completion_with_a_stale_lease_is_refused_and_changes_nothing(linear: Runyard) -> None:
    linear.jobs.new_run("Linear", "Source", outputs={"value": 1})
    [(job, lease)] = linear.leases.claim(worker_id(linear), [], 1)
    with pytest.raises(StaleLease, match="no longer held"):
        linear.leases.complete(job.serial, "not-the-lease", {"value": 99})
    assert linear.jobs.get(job.serial).state == "Running"
    linear.leases.complete(job.serial, lease.lease_id, {"value": 2})
    with pytest.raises(StaleLease):
        linear.leases.complete(job.serial, lease.lease_id, {"value": 3})
    assert linear.jobs.get(job.serial).outputs == {"value": 2}


def test_outputs_outside_the_interface_fail_the_job_with_a_clear_message(linear: Runyard) -> None:
    linear.jobs.new_run("Linear", "Source", outputs={"value": 1})
    [(job, lease)] = linear.leases.claim(worker_id(linear), [], 1)
    failed = linear.leases.complete(job.serial, lease.lease_id, {"valeu": 2})
    assert failed.state == "Failed" and "'valeu' is not in the interface" in failed.error


class Clock:
    def __init__(self) -> None:
        self.time = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.time


@pytest.fixture
def clocked(settings: Settings) -> Iterator[Runyard]:
    clock = Clock()
    ry = Runyard(settings, now=clock).open()
    ry.clock = clock  # type: ignore[attr-defined]
    install_test_task_types(ry)
    ry.workflows.import_package(load_package(WORKFLOWS / "Linear"))  # type: ignore[arg-type]
    ry.workflows.set_state("Linear", "Started")
    yield ry
    ry.close()


def test_an_expired_lease_requeues_the_job_and_refuses_the_old_worker(clocked: Runyard) -> None:
    clocked.jobs.new_run("Linear", "Source", outputs={"value": 1})
    wid = worker_id(clocked)
    [(job, old)] = clocked.leases.claim(wid, [], 1)
    clocked.clock.time += timedelta(seconds=31)  # type: ignore[attr-defined]
    assert clocked.leases.expire_leases() == 1
    [(again, new)] = clocked.leases.claim(wid, [], 1)
    assert again.serial == job.serial and again.attempt == 2 and new.lease_id != old.lease_id
    with pytest.raises(StaleLease):
        clocked.leases.heartbeat(job.serial, old.lease_id)
    with pytest.raises(StaleLease):
        clocked.leases.complete(job.serial, old.lease_id, {"value": 5})
    assert clocked.leases.complete(job.serial, new.lease_id, {"value": 2}).state == "Done"


def test_a_heartbeat_keeps_the_lease_alive(clocked: Runyard) -> None:
    clocked.jobs.new_run("Linear", "Source", outputs={"value": 1})
    wid = worker_id(clocked)
    [(job, lease)] = clocked.leases.claim(wid, [], 1)
    for _ in range(3):
        clocked.clock.time += timedelta(seconds=20)  # type: ignore[attr-defined]
        clocked.leases.heartbeat(job.serial, lease.lease_id)
        assert clocked.leases.expire_leases() == 0
        assert clocked.leases.claim(wid, [], 1) == []
    assert clocked.jobs.get(job.serial).state == "Running"


def test_a_job_fails_after_the_attempt_limit_of_expired_leases(clocked: Runyard) -> None:
    clocked.jobs.new_run("Linear", "Source", outputs={"value": 1})
    wid = worker_id(clocked)
    for _ in range(3):
        [(job, _lease)] = clocked.leases.claim(wid, [], 1)
        clocked.clock.time += timedelta(seconds=31)  # type: ignore[attr-defined]
        clocked.leases.expire_leases()
    assert clocked.leases.claim(wid, [], 1) == []
    failed = clocked.jobs.get(job.serial)
    assert failed.state == "Failed" and "lease expired" in failed.error


def test_release_requeues_without_counting_the_attempt(linear: Runyard) -> None:
    linear.jobs.new_run("Linear", "Source", outputs={"value": 1})
    wid = worker_id(linear)
    [(job, lease)] = linear.leases.claim(wid, [], 1)
    assert linear.leases.release(job.serial, lease.lease_id).state == "Queued"
    [(again, _)] = linear.leases.claim(wid, [], 1)
    assert again.attempt == 1


def test_restart_new_job_obsoletes_it_and_downstream_and_creates_a_new_job(
    linear: Runyard,
) -> None:
    linear.jobs.new_run("Linear", "Source", outputs={"value": 4}, name="r")
    run_all(linear, worker_id(linear))
    before = live_jobs(linear)["r"]
    new = linear.jobs.restart_new_job(int(str(before["Double"]["serial"])))
    assert new.state == "Queued" and new.inputs == {"value": 4}
    after = live_jobs(linear)["r"]
    assert after["Source"]["serial"] == before["Source"]["serial"]
    assert after["Double"]["serial"] == new.serial
    assert "Add" not in after
    run_all(linear, worker_id(linear))
    assert live_jobs(linear)["r"]["Add"]["outputs"] == {"value": 18}


def test_a_job_created_obsolete_creates_its_followers_when_updated_to_done(
    linear: Runyard,
) -> None:
    job = linear.jobs.new_run("Linear", "Source", outputs={"value": 1}, name="r")
    restarted = linear.jobs.update_state(job.serial, "Obsolete")
    assert restarted.state == "Obsolete"
    revived = linear.jobs.update_state(job.serial, "Done")
    assert revived.state == "Done"


@pytest.mark.parametrize(("first", "then"), [("Done", "Running"), ("Done", "Queued")])
def test_illegal_transitions_are_refused_and_change_nothing(
    linear: Runyard, first: str, then: str
) -> None:
    job = linear.jobs.new_run("Linear", "Source", outputs={"value": 1})
    with pytest.raises(InvalidInput):
        linear.jobs.update_state(job.serial, then)
    assert linear.jobs.get(job.serial).state == first


def test_done_cannot_become_done_again(linear: Runyard) -> None:
    job = linear.jobs.new_run("Linear", "Source", outputs={"value": 1})
    with pytest.raises(IllegalTransition, match="from Done to Done"):
        linear.jobs.update_state(job.serial, "Done")


def test_new_run_refuses_unknown_workflows_tasks_and_non_source_tasks(linear: Runyard) -> None:
    with pytest.raises(NotFound, match="no workflow named 'Nope'; workflows: Linear"):
        linear.jobs.new_run("Nope", "Source")
    with pytest.raises(NotFound, match="no task named 'Nope'; its tasks: Source, Double, Add"):
        linear.jobs.new_run("Linear", "Nope")
    with pytest.raises(InvalidInput, match="takes inputs from Source"):
        linear.jobs.new_run("Linear", "Double", outputs={"value": 1})
    with pytest.raises(InvalidInput, match="output 'value'"):
        linear.jobs.new_run("Linear", "Source", outputs={"value": "three"})
    assert live_jobs(linear) == {}


def test_new_run_stores_the_entity_and_appends_in_sort_order(linear: Runyard) -> None:
    linear.jobs.new_run(
        "Linear",
        "Source",
        outputs={"value": 1},
        name="b",
        entity=Entity(uuid="u-1", name="Sample 1"),
    )
    linear.jobs.new_run("Linear", "Source", outputs={"value": 1}, name="a")
    runs = linear.workflows.status("Linear")["runs"]
    assert [r["name"] for r in runs] == ["b", "a"]
    assert runs[0]["entity"] == {"type": "Entity", "uuid": "u-1", "name": "Sample 1"}


def test_an_obsolete_workflow_refuses_new_runs_until_started_again(linear: Runyard) -> None:
    linear.workflows.set_state("Linear", "Obsolete")
    with pytest.raises(Conflict, match="is Obsolete"):
        linear.jobs.new_run("Linear", "Source", outputs={"value": 1})
    linear.workflows.set_state("Linear", "Started")
    assert linear.jobs.new_run("Linear", "Source", outputs={"value": 1}).state == "Done"


def test_a_locked_workflow_cannot_be_stopped_until_unlocked(linear: Runyard) -> None:
    linear.workflows.set_locked("Linear", True)
    with pytest.raises(Conflict, match="locked"):
        linear.workflows.set_state("Linear", "Draft")
    linear.workflows.set_locked("Linear", False)
    assert linear.workflows.set_state("Linear", "Draft").state == "Draft"


def test_priority_must_be_a_known_one(linear: Runyard) -> None:
    job: Job = linear.jobs.new_run("Linear", "Source", outputs={"value": 1})
    with pytest.raises(InvalidInput, match="paused, normal, high"):
        linear.jobs.set_priority(job.run_id, "urgent")


def test_a_running_job_cannot_be_set_done_through_the_api(linear: Runyard) -> None:
    linear.jobs.new_run("Linear", "Source", outputs={"value": 1})
    [(job, _lease)] = linear.leases.claim(worker_id(linear), [], 1)
    with pytest.raises(IllegalTransition, match="completed by its worker"):
        linear.jobs.update_state(job.serial, "Done")
    assert linear.jobs.get(job.serial).state == "Running"
