"""The one lock order (runs first, in id order; then the jobs; then the study run; the
workflow's row last) on the paths that change jobs of several runs at once: a spawning job
obsoleting the jobs it spawned, and the first answer to a ``define_on_first`` input, which
queues the task's Waiting jobs in every run. Raced against obsoletes of runs and of the
workflow, lease expiry and each other; on PostgreSQL a deadlock would be reported as
``DeadlockDetected`` (SQLite has one writer: the same races must simply end well)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from runyard.errors import Conflict
from runyard.operations import Runyard
from runyard.operations.spawn_batch import JobSpawn
from runyard.packages import load_package
from runyard.settings import Settings
from tests.conftest import FIXTURES, WORKFLOWS, install_test_task_types
from tests.integration.test_engine import worker_id
from tests.integration.test_lock_order import RACING_RUNS, ROUNDS, Clock, live_table_jobs, race


@pytest.fixture
def clock() -> Clock:
    return Clock()


LOCK_ORDER = FIXTURES / "lock_order"  # a reduce over Weigh, and its workflow


def started(settings: Settings, clock: Clock, workflow: Path) -> Runyard:
    """A Runyard whose clock the test moves, one attempt per job (an expired lease fails its
    job, which changes the reduce's decision), with the started ``workflow``."""
    ry = Runyard(replace(settings, max_attempts=1), now=clock).open()
    install_test_task_types(ry)
    ry.task_types.install(load_package(LOCK_ORDER / "WeightTable"))  # type: ignore[arg-type]
    ry.workflows.import_package(load_package(workflow))  # type: ignore[arg-type]
    ry.workflows.set_state(workflow.name, "Started")
    return ry


@pytest.fixture
def reduced_once(settings: Settings, clock: Clock) -> Iterator[Runyard]:
    """'Reduced': Source -> Double -> Table (a reduce over Double)."""
    ry = started(settings, clock, WORKFLOWS / "Reduced")
    yield ry
    ry.close()


@pytest.fixture
def factored_table(settings: Settings, clock: Clock) -> Iterator[Runyard]:
    """'FactoredTable': Source -> Weigh (factor: define_on_first) -> Weights (a reduce)."""
    ry = started(settings, clock, LOCK_ORDER / "FactoredTable")
    yield ry
    ry.close()


def test_obsoleting_spawned_jobs_of_many_runs_racing_obsoletes_and_expiry_never_deadlocks(
    reduced_once: Runyard, clock: Clock
) -> None:
    """Each round: a Running Double spawns Done Sources in new runs, whose Doubles are claimed;
    their leases run out while the spawning job sets its Sources Obsolete (the last run
    first), the new runs are obsoleted (the first first) and the workflow is obsoleted. On
    PostgreSQL the spawning job used to take each run in turn, holding the study run from
    the first job on, and deadlocked against each of the others."""
    ry = reduced_once
    wid = worker_id(ry)
    _, tasks = ry.workflows.get("Reduced")
    source = next(t.id for t in tasks if t.name == "Source")
    done_runs: list[int] = []
    for round_ in range(ROUNDS):
        done = ry.jobs.new_run("Reduced", "Source", outputs={"value": round_}, name=f"d{round_}")
        spawning = ry.jobs.new_run("Reduced", "Source", outputs={"value": 0}, name=f"s{round_}")
        claimed = {job.run_id: (job, lease) for job, lease in ry.leases.claim(wid, [], 50)}
        finished, lease = claimed.pop(done.run_id)
        ry.leases.complete(finished.serial, lease.lease_id, {"value": 2 * round_})
        done_runs.append(done.run_id)
        spawner, _ = claimed.pop(spawning.run_id)
        spawns = [JobSpawn(task_id=source, outputs={"value": i}) for i in range(RACING_RUNS)]
        spawned = ry.spawns.spawn_jobs(spawner.serial, spawns)
        doubles = {job.run_id: job for job, _ in ry.leases.claim(wid, [], 50)}
        assert sorted(doubles) == sorted(s.run_id for s in spawned)
        clock.now += timedelta(seconds=ry.settings.lease_seconds + 1)

        def obsolete_runs(runs: list[int] = sorted(doubles)) -> None:
            for run_id in runs:
                ry.runs.set_obsolete(run_id, True)

        errors = race(
            lambda: ry.spawns.set_spawned_states(
                spawner.serial, [s.serial for s in reversed(spawned)], "Obsolete"
            ),
            ry.leases.expire_leases,
            obsolete_runs,
            lambda: ry.workflows.set_state("Reduced", "Obsolete"),
        )
        assert errors == [], f"round {round_}: {errors!r}"
        assert {ry.jobs.get(s.serial).state for s in spawned} == {"Obsolete"}
        for job in doubles.values():
            now = ry.jobs.get(job.serial)
            assert (now.state, now.attempt) in (("Failed", 1), ("Queued", 0)), now
        ry.workflows.set_state("Reduced", "Started")
        ry.runs.set_obsolete(spawning.run_id, True)  # its spawning job: given back or Failed
        # The reduce reads exactly the runs with a Done Double, whoever decided last.
        (table,) = [j for j in live_table_jobs(ry) if j.state != "Obsolete"]
        assert [r["id"] for r in table.metadata["runs"]] == done_runs


def weigh_inputs(template: float | None) -> list[dict[str, Any]]:
    """The inputs of FactoredTable's Weigh, its factor's template ``template``."""
    return [
        {"key": "value", "source": {"mode": "output", "task": "Source", "key": "value"}},
        {"key": "factor", "source": {"mode": "define_on_first", "template": template}},
        {"key": "unit", "source": {"mode": "fixed", "fixed_value": "mm"}},
        {"key": "measured", "source": {"mode": "none"}},
    ]


def set_template(ry: Runyard, template: float | None) -> None:
    ry.workflows.set_state("FactoredTable", "Draft")
    ry.workflows.edit_task("FactoredTable", "Weigh", inputs=weigh_inputs(template))
    ry.workflows.set_state("FactoredTable", "Started")


def weigh_job(ry: Runyard, run_id: int) -> Any:
    (cell,) = [r for r in ry.workflows.status("FactoredTable")["runs"] if r["id"] == run_id]
    return ry.jobs.get(cell["jobs"]["Weigh"]["serial"])


def test_first_answers_racing_each_other_obsoletes_and_expiry_never_deadlock(
    factored_table: Runyard, clock: Clock
) -> None:
    """Each round: runs whose Weighs are Running, and runs whose Weighs wait for the factor's
    first answer. Two of those are answered at once (the first run's and the last run's),
    while the runs between are obsoleted, the Running Weighs' leases run out and the workflow
    is obsoleted.
    One answer becomes the template and queues every Waiting Weigh; the other finds its job
    Queued already. On PostgreSQL a submit used to lock its own run, then the others' one by
    one (holding the study run from the first on), and deadlocked."""
    ry = factored_table
    wid = worker_id(ry)
    for round_ in range(ROUNDS):
        set_template(ry, 2.0)
        held = [
            ry.jobs.new_run("FactoredTable", "Source", outputs={"value": i}, name=f"h{round_}-{i}")
            for i in range(RACING_RUNS)
        ]
        claimed = {job.run_id for job, _ in ry.leases.claim(wid, [], 50)}
        assert claimed == {h.run_id for h in held}
        set_template(ry, None)
        runs = [
            ry.jobs.new_run("FactoredTable", "Source", outputs={"value": i}, name=f"w{round_}-{i}")
            for i in range(RACING_RUNS)
        ]
        waiting = [weigh_job(ry, r.run_id) for r in runs]
        assert {j.state for j in waiting} == {"Waiting"}
        clock.now += timedelta(seconds=ry.settings.lease_seconds + 1)

        def obsolete_runs(between: list[int] = [r.run_id for r in runs[1:-1]]) -> None:
            for run_id in between:
                ry.runs.set_obsolete(run_id, True)

        errors = race(
            lambda: ry.runs.submit(waiting[0].serial, inputs={"factor": 1.5}),
            lambda: ry.runs.submit(waiting[-1].serial, inputs={"factor": 3.0}),
            obsolete_runs,
            ry.leases.expire_leases,
            lambda: ry.workflows.set_state("FactoredTable", "Obsolete"),
        )
        assert len(errors) == 1, f"round {round_}: {errors!r}"
        assert isinstance(errors[0], Conflict) and "only a Waiting job" in str(errors[0])
        factors = {ry.jobs.get(j.serial).inputs["factor"] for j in waiting}
        assert factors in ({1.5}, {3.0}), f"round {round_}: {factors}"
        assert {ry.jobs.get(j.serial).state for j in waiting} == {"Queued"}
        _, tasks = ry.workflows.get("FactoredTable")
        (weigh,) = [t for t in tasks if t.name == "Weigh"]
        assert {weigh.input_source("factor").template} == factors
        ry.workflows.set_state("FactoredTable", "Started")
        for run_id in [*claimed, runs[0].run_id, runs[-1].run_id]:
            ry.runs.set_obsolete(run_id, True)  # nothing of this round is claimed next round
