"""Restarts: a job and what follows it in its run made Obsolete, and a new job of its task
(``Restarting``, a base of ``JobManager``; also the automatic retry of a failed job).

Restarting many jobs at once: which jobs a call chooses (serials, or a filter by states,
tasks and runs), checked before anything changes, the order they are restarted in, and why
one was skipped (``restart_jobs``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection

from runyard.errors import Conflict, IllegalTransition, InvalidInput, NotFound, RunyardError
from runyard.models import Job, Task, Workflow
from runyard.operations.stale import dependency_order
from runyard.operations.transitions import Transitions
from runyard.states import JobState, downstream_tasks
from runyard.store import jobs as job_rows
from runyard.store import reduce as reduce_rows
from runyard.store import runs as run_rows
from runyard.store import workflows as workflow_rows
from runyard.taskgraph import awaited_tasks

# The most jobs one call restarts (one transaction): more is refused, naming the limit.
MAX_RESTARTS = 10_000
# The states a job can be restarted from (an Obsolete job is not: its task's live one is).
RESTARTABLE = tuple(s for s in JobState if s != JobState.OBSOLETE)


@dataclass(frozen=True, kw_only=True)
class RestartChoice:
    """The jobs a batch restart asks for: ``serials``, or (``serials`` None) the live jobs
    in one of ``states``, of ``tasks`` (names; empty: all) and in ``runs`` (ids; empty: all)."""

    serials: tuple[int, ...] | None = None
    states: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    runs: tuple[int, ...] = ()

    @classmethod
    def of(cls, serials: Sequence[int] | None, chosen: dict[str, Any] | None) -> RestartChoice:
        """Checked: serials or a filter (not both, not neither), a filter with states that
        can be restarted, at most ``MAX_RESTARTS`` serials."""
        if (serials is None) == (chosen is None):
            raise InvalidInput(
                'give either "serials" (a list of job serials) or "filter" (states, and '
                "optionally tasks and runs), not both and not neither"
            )
        if serials is not None:
            if not serials:
                raise InvalidInput('"serials" is empty: name at least one job')
            unique = tuple(dict.fromkeys(serials))
            check_restart_count(len(unique), "the call names", exact=True)
            return cls(serials=unique)
        assert chosen is not None
        states = list(chosen.get("states") or [])
        if not states:
            raise InvalidInput(
                'a restart filter needs "states" (one or more of '
                + ", ".join(RESTARTABLE)
                + "): an empty filter would restart every job",
                filter=chosen,
            )
        wrong = [s for s in states if s not in RESTARTABLE]
        if wrong:
            raise InvalidInput(
                f"cannot restart jobs by state {', '.join(map(str, wrong))}; restartable "
                f"states: {', '.join(RESTARTABLE)}",
                states=wrong,
            )
        return cls(
            states=tuple(dict.fromkeys(states)),
            tasks=tuple(dict.fromkeys(chosen.get("tasks") or [])),
            runs=tuple(dict.fromkeys(chosen.get("runs") or [])),
        )


def check_restart_count(count: int, what: str, *, exact: bool = False) -> None:
    """Refuse more than ``MAX_RESTARTS`` jobs (``count``: how many, or, not ``exact``, one
    more than the limit when more were found)."""
    if count > MAX_RESTARTS:
        shown = f"{count:,}" if exact else f"more than {MAX_RESTARTS:,}"
        raise InvalidInput(
            f"{what} {shown} jobs; one call restarts at most {MAX_RESTARTS:,}: narrow the "
            "filter by tasks or runs, or split the serials; nothing was restarted",
            limit=MAX_RESTARTS,
        )


def restartable(
    workflow: Workflow, tasks: list[Task], serials: Iterable[int] | None, found: list[Job]
) -> tuple[list[Job], list[dict[str, Any]]]:
    """The jobs to restart in order (by run; in each run upstream tasks first; reduce jobs
    last, after the runs they read), and those skipped at once with why: unknown, of
    another workflow, Obsolete."""
    by_serial = {job.serial: job for job in found}
    skipped: list[dict[str, Any]] = []
    for serial in serials or ():
        job = by_serial.get(serial)
        reason = None
        if job is None:
            reason = f"no job with serial {serial}"
        elif job.workflow_id != workflow.id:
            reason = f"job {serial} is not in workflow {workflow.name!r}"
        elif job.state == JobState.OBSOLETE:
            reason = f"job {serial} is Obsolete; restart the live job of its task instead"
        if reason:
            skipped.append({"serial": serial, "reason": reason})
            by_serial.pop(serial, None)
    ranks = {t.id: n for n, t in enumerate(dependency_order(tasks))}
    reduces = {t.id for t in tasks if t.task_type.interface.kind == "reduce"}
    ordered = sorted(
        by_serial.values(),
        key=lambda j: (j.task_id in reduces, j.run_id, ranks.get(j.task_id, 0), j.serial),
    )
    return ordered, skipped


def chosen_jobs(
    conn: Connection, workflow: Workflow, tasks: list[Task], choice: RestartChoice
) -> list[Job]:
    """The jobs a choice names: by serial (whatever they are; ``restartable`` sorts them
    out), or the live jobs its filter selects (unknown tasks and runs refused)."""
    if choice.serials is not None:
        return job_rows.jobs_by_serial(conn, choice.serials)
    by_name = {t.name: t.id for t in tasks}
    unknown = [name for name in choice.tasks if name not in by_name]
    if unknown:
        raise NotFound(
            f"workflow {workflow.name!r} has no task named {unknown[0]!r}; its tasks: "
            + ", ".join(by_name),
            task=unknown[0],
        )
    for run_id in choice.runs:
        run = run_rows.get_run(conn, run_id)
        if run is None or run.study or run.workflow_id != workflow.id:
            raise NotFound(f"workflow {workflow.name!r} has no run with id {run_id}", run=run_id)
    task_ids = [by_name[name] for name in choice.tasks]
    found = job_rows.live_jobs_of(
        conn, workflow.id, choice.states, task_ids, choice.runs, MAX_RESTARTS + 1
    )
    check_restart_count(len(found), "the filter selects")
    return found


def skip_reason(conn: Connection, job: Job, exc: RunyardError) -> str:
    """Why a job of a batch restart was skipped: the refusal's message, or that an earlier
    restart of the batch made it Obsolete (it is made again as a follower)."""
    now = job_rows.get_job(conn, job.serial)
    if job.state != JobState.OBSOLETE and now is not None and now.state == JobState.OBSOLETE:
        return (
            f"job {job.serial} was made Obsolete by the restart of a job upstream of it in its "
            "run (in this call); it is made again as a follower"
        )
    return str(exc)


class Restarting(Transitions):
    def restart_new_job(self, serial: int, *, actor: str = "system") -> Job:
        """Obsolete the job and everything downstream of it in its run; create a new job
        for its task with the task's current configuration."""
        with self._write_and_notify() as conn:
            job = job_rows.get_job(conn, serial)
            if job is None:
                raise NotFound(f"no job with serial {serial}", serial=serial)
            return self._restart(conn, job, actor)

    def restart_jobs(
        self, workflow_name: str, choice: RestartChoice, *, actor: str = "system"
    ) -> dict[str, list[dict[str, Any]]]:
        """Restart many jobs of a workflow in one transaction (each as ``restart_new_job``),
        upstream ones of a run first; those that cannot be restarted are skipped with the
        reason. ``{"restarted": [{"serial", "new_serial", "state"}], "skipped": [{"serial",
        "reason"}]}``."""
        with self._write_and_notify() as conn:
            workflow = self._workflow(conn, workflow_name)
            tasks = self._tasks(conn, workflow.id)
            found = chosen_jobs(conn, workflow, tasks, choice)
            jobs, skipped = restartable(workflow, tasks, choice.serials, found)
            # The lock order: the runs (in id order), then the study run (reduce jobs last).
            reduces = {t.id for t in tasks if t.task_type.interface.kind == "reduce"}
            run_rows.lock_runs(conn, sorted({j.run_id for j in jobs if j.task_id not in reduces}))
            restarted: list[dict[str, Any]] = []
            for job in jobs:
                try:
                    with conn.begin_nested():
                        new = self._restart(conn, job, actor)
                except RunyardError as exc:
                    skipped.append({"serial": job.serial, "reason": skip_reason(conn, job, exc)})
                    continue
                restarted.append({"serial": job.serial, "new_serial": new.serial,
                                  "state": new.state})  # fmt: skip
            return {"restarted": restarted, "skipped": skipped}

    def _restart(
        self, conn: Connection, job: Job, actor: str, *, retry: tuple[int, int] | None = None
    ) -> Job:
        """Restart new job (``restart_new_job``) in a transaction that is under way; with
        ``retry`` (n, of), the automatic retry n of ``of`` of a job whose script failed (the
        new job's metadata names it: ``retry_of``, ``retry``)."""
        new = self._new_attempt(conn, job)
        if retry is None:
            action, message = "job.restart", f"job {job.serial} restarted as job {new.serial}"
        else:
            metadata = new.metadata | {"retry_of": job.serial, "retry": retry[0]}
            job_rows.set_metadata(conn, new.serial, metadata)
            new = replace(new, metadata=metadata)
            action = "job.retry"
            message = f"job {job.serial} failed; retry {retry[0]} of {retry[1]} as job {new.serial}"
        self._log(
            conn, action=action, actor=actor, message=message, workflow_id=job.workflow_id,
            job_serial=new.serial,
        )  # fmt: skip
        return new

    def _new_attempt(self, conn: Connection, job: Job) -> Job:
        """The job and what follows it in its run Obsolete, and a new job of its task."""
        serial = job.serial
        if job.state == JobState.OBSOLETE:
            raise IllegalTransition(
                f"job {serial} is Obsolete; restart the live job of its task instead",
                serial=serial,
            )
        run = run_rows.get_run(conn, job.run_id)
        if run is not None and run.obsolete:
            raise Conflict(
                f"job {serial} is in run {run.name!r}, which is obsolete; restore the run first",
                serial=serial,
            )
        run_rows.lock_run(conn, job.run_id)
        workflow = workflow_rows.get_workflow(conn, id=job.workflow_id)
        assert workflow is not None
        tasks = self._tasks(conn, workflow.id)
        by_id = {t.id: t for t in tasks}
        task = by_id[job.task_id]
        if task.task_type.interface.kind == "reduce":
            return self._restart_reduce(conn, job, task, tasks)
        live = job_rows.live_jobs_in_run(conn, job.run_id)
        upstream = {
            by_id[j.task_id].name: j.outputs
            for j in live
            if j.state == JobState.DONE and by_id[j.task_id].name in task.upstream_names()
        }
        missing = task.upstream_names() - upstream.keys()
        if missing:
            raise Conflict(
                f"cannot restart job {serial}: upstream task(s) {', '.join(sorted(missing))} "
                "have no Done job in this run",
                serial=serial,
            )
        doomed = downstream_tasks(task.name, tasks) | {task.name}
        for other in live:
            if by_id[other.task_id].name in doomed:
                self._transition(conn, other.serial, JobState.OBSOLETE, lease_id=None)
        new = self._create_job(
            conn, workflow, tasks, task, job.run_id, outputs=None, upstream_outputs=upstream
        )
        # Obsoleting the old job re-decided the reduces before the new one existed.
        self._refresh_reduces(conn, workflow.id, [task.id])
        return new

    def _restart_reduce(self, conn: Connection, job: Job, task: Task, tasks: list[Task]) -> Job:
        """A new reduce job from the current upstream results, even if they did not change."""
        self._refresh_reduce(conn, task, tasks, awaited_tasks(task, tasks), force=True)
        new = reduce_rows.live_job(conn, task.id, job.run_id)
        if new is None or new.serial == job.serial:
            raise Conflict(
                f"cannot restart reduce job {job.serial} now: runs still have upstream work "
                "pending, or none has a Done result; it is queued by itself when they are done",
                serial=job.serial,
            )
        return new
