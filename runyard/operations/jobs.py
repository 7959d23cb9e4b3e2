"""The job engine: runs, jobs, followers, claims and leases.

Every state change goes through ``_transition``: the table in ``runyard.states`` says which
sources are legal, the store applies a guarded update, and a transition into Done creates
the follower jobs in the same transaction.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import Connection

from runyard.errors import (
    Conflict,
    IllegalTransition,
    InvalidInput,
    NotFound,
    RunyardError,
    StaleLease,
)
from runyard.models import Entity, Job, Task, Workflow
from runyard.operations.reduce import Reducing
from runyard.operations.restarts import RestartChoice, chosen_jobs, restartable, skip_reason
from runyard.sortorder import keys_after
from runyard.states import (
    JobState,
    Priority,
    WorkflowState,
    check_api_transition,
    check_transition,
    decide_followers,
    downstream_tasks,
    resolve_inputs,
    sources_of,
)
from runyard.store import jobs as job_rows
from runyard.store import reduce as reduce_rows
from runyard.store import runs as run_rows
from runyard.store import workflows as workflow_rows
from runyard.taskgraph import TaskGraph, awaited_tasks
from runyard.validation import check_outputs

ACTIVITY_LEVELS = ("debug", "info", "warning", "error")
MAX_LOG_CHARS = 1024 * 1024  # the job log keeps the last MiB of output


class JobManager(Reducing):
    # -- runs ---------------------------------------------------------------------------

    def new_run(
        self,
        workflow_name: str,
        task_name: str,
        *,
        outputs: dict[str, Any] | None = None,
        name: str | None = None,
        entity: Entity | None = None,
        actor: str = "system",
    ) -> Job:
        """Start a run at a source task: its source job is Done with ``outputs`` if given,
        else Waiting for a user (interactive, or inputs to enter) or Queued. Waiting claims
        are woken only if the workflow is Started (no worker may take a job of another)."""
        with self.store.write() as conn:
            job, workflow = self._new_run(
                conn,
                workflow_name,
                task_name,
                outputs=outputs,
                name=name,
                entity=entity,
                actor=actor,
            )
        if workflow.state == WorkflowState.STARTED:
            self.changed.notify()
        return job

    def _new_run(
        self,
        conn: Connection,
        workflow_name: str,
        task_name: str,
        *,
        outputs: dict[str, Any] | None,
        name: str | None,
        entity: Entity | None,
        actor: str,
    ) -> tuple[Job, Workflow]:
        """``new_run`` in the transaction ``conn``: the source job and its workflow."""
        workflow = self._workflow(conn, workflow_name)
        if workflow.state == WorkflowState.OBSOLETE:
            raise Conflict(
                f"workflow {workflow.name!r} is Obsolete; start it again to add runs",
                workflow=workflow.name,
            )
        tasks = self._tasks(conn, workflow.id)
        task = self._task(tasks, task_name, workflow)
        if not task.is_source:
            upstream = ", ".join(sorted(task.upstream_names()))
            raise InvalidInput(
                f"task {task.name!r} takes inputs from {upstream}; "
                "a new run starts at a source task",
                task=task.name,
            )
        if outputs is not None:
            _check_all_outputs(task, outputs)
        sort_order = next_sort_order(conn, workflow.id)
        run_id = run_rows.insert_run(
            conn,
            workflow_id=workflow.id,
            name=name or f"Run {sort_order}",
            sort_order=sort_order,
            entity=entity,
            now=self.now(),
        )
        job = self._create_job(conn, workflow, tasks, task, run_id, outputs=outputs)
        self._refresh_reduces(conn, workflow.id, [task.id])
        self._log(
            conn,
            actor,
            "run.new",
            f"new run {name or run_id!s} at {task.name}",
            workflow_id=workflow.id,
            job_serial=job.serial,
        )
        return job, workflow

    def set_priority(self, run_id: int, priority: str, *, actor: str = "system") -> None:
        if priority not in set(Priority):
            raise InvalidInput(
                f"priority must be one of {', '.join(Priority)}, not {priority!r}",
                priority=priority,
            )
        with self._write_and_notify() as conn:
            run = run_rows.get_run(conn, run_id)
            if run is None or run.study or not run_rows.set_priority(conn, run_id, priority):
                raise NotFound(f"no run with id {run_id}", run=run_id)
            self._refresh_reduces(conn, run.workflow_id)  # paused runs are left out
            self._log(
                conn,
                actor,
                "run.priority",
                f"run {run_id} priority {priority}",
                workflow_id=run.workflow_id,
            )

    def _create_job(
        self,
        conn: Connection,
        workflow: Workflow,
        tasks: list[Task],
        task: Task,
        run_id: int,
        *,
        outputs: dict[str, Any] | None,
        upstream_outputs: dict[str, dict[str, Any]] | None = None,
    ) -> Job:
        inputs, needs_user = resolve_inputs(task, upstream_outputs or {})
        if outputs is not None:
            problem = check_outputs(task.task_type, outputs)
            if problem:
                raise InvalidInput(problem, task=task.name)
            state = JobState.DONE
        elif needs_user or task.task_type.interface.kind == "interactive":
            state = JobState.WAITING
        else:
            state = JobState.QUEUED
        serial = job_rows.insert_job(
            conn,
            workflow_id=workflow.id,
            run_id=run_id,
            task_id=task.id,
            task_type_id=task.task_type.id,
            state=state.value,
            inputs=inputs,
            outputs=outputs or {},
            created_at=self.now(),
        )
        assert serial is not None
        job = job_rows.get_job(conn, serial)
        assert job is not None
        if state == JobState.DONE:
            self._create_followers(conn, job)
        return job

    def get(self, serial: int) -> Job:
        with self.store.read() as conn:
            job = job_rows.get_job(conn, serial)
        if job is None:
            raise NotFound(f"no job with serial {serial}", serial=serial)
        return job

    # -- followers ----------------------------------------------------------------------

    def _create_followers(
        self, conn: Connection, job: Job, graph: TaskGraph | None = None
    ) -> list[int]:
        """Create the follower jobs of ``job``, which has just become Done. The run's other
        jobs are read only when a follower also takes outputs of another task; otherwise
        the database's one live job per task and run keeps a follower from being doubled."""
        graph = graph or self._graph(conn, job.workflow_id)
        task = graph.by_id.get(job.task_id)
        if task is None or not graph.followers[task.id]:
            return []
        done_outputs: dict[str, dict[str, Any]] = {task.name: job.outputs}
        live_tasks: list[str] = []
        if task.id in graph.joins:
            live = job_rows.live_jobs_in_run(conn, job.run_id)
            live_tasks = [graph.by_id[j.task_id].name for j in live if j.task_id in graph.by_id]
            done_outputs |= {
                graph.by_id[j.task_id].name: j.outputs
                for j in live
                if j.state == JobState.DONE and j.task_id in graph.by_id and j.serial != job.serial
            }
        plans = decide_followers(task, graph.followers[task.id], done_outputs, live_tasks)
        created = []
        now = self.now()
        for plan in plans:
            serial = job_rows.insert_job(
                conn,
                if_no_live_job=True,
                workflow_id=job.workflow_id,
                run_id=job.run_id,
                task_id=plan.task_id,
                task_type_id=graph.by_id[plan.task_id].task_type.id,
                state=plan.state.value,
                inputs=plan.inputs,
                created_at=now,
            )
            if serial is not None:
                created.append(serial)
        return created

    # -- state changes ------------------------------------------------------------------

    def _transition(
        self,
        conn: Connection,
        serial: int,
        target: JobState,
        *,
        held_lease: str | None = None,
        **values: Any,
    ) -> Job:
        """Apply one state change with a guarded update; followers on Done."""
        job = job_rows.get_job(conn, serial)
        if job is None:
            raise NotFound(f"no job with serial {serial}", serial=serial)
        run_rows.lock_run(conn, job.run_id)
        if job.state == JobState.OBSOLETE and target != JobState.OBSOLETE:
            _check_no_live_job(conn, job, target)
        ok = job_rows.set_state(
            conn, serial, target, sources_of(target), held_lease=held_lease, **values
        )
        if not ok:
            current = job_rows.get_job(conn, serial)
            assert current is not None
            if held_lease is not None:
                raise StaleLease(
                    f"job {serial} is no longer held by this lease (it is {current.state}, "
                    f"attempt {current.attempt}); its result was not recorded",
                    serial=serial,
                    state=current.state,
                )
            check_transition(current.state, target)
            raise IllegalTransition(
                f"job {serial} changed state meanwhile (now {current.state})", serial=serial
            )
        updated = job_rows.get_job(conn, serial)
        assert updated is not None
        if target == JobState.DONE:
            self._create_followers(conn, updated)
        self._refresh_reduces(conn, job.workflow_id, [job.task_id])
        return updated

    def update_state(self, serial: int, state: str, *, actor: str = "system") -> Job:
        """A state change asked for through the API (e.g. finishing a spawned job)."""
        target = _job_state(state)
        if target not in (JobState.DONE, JobState.OBSOLETE, JobState.ABORTED):
            raise InvalidInput(
                f"the API sets a job to Done, Obsolete or Aborted, not {state}", state=state
            )
        with self._write_and_notify() as conn:
            current = job_rows.get_job(conn, serial)
            if current is None:
                raise NotFound(f"no job with serial {serial}", serial=serial)
            job = self._set_state(conn, current, target)
            self._log(
                conn,
                actor,
                "job.state",
                f"job {serial}: {current.state} -> {target}",
                workflow_id=job.workflow_id,
                job_serial=serial,
            )
            return job

    def _set_state(self, conn: Connection, current: Job, target: JobState) -> Job:
        """A state change asked for from outside the worker protocol, checked."""
        check_api_transition(current.serial, current.state, target)
        values: dict[str, Any] = {"lease_id": None}
        if target == JobState.DONE:
            values["finished_at"] = self.now()
        return self._transition(conn, current.serial, target, **values)

    def log(self, serial: int, offset: int = 0) -> str:
        """The job's log from character ``offset`` on (to follow a running job's output)."""
        with self.store.read() as conn:
            text = job_rows.read_log(conn, serial)
        if text is None:
            raise NotFound(f"no job with serial {serial}", serial=serial)
        return text[offset:]

    def log_activity(self, serial: int, message: str, level: str = "info") -> None:
        """An entry in the activity log written by a job's script."""
        if level not in ACTIVITY_LEVELS:
            raise InvalidInput(
                f"unknown activity level {level!r}; use {', '.join(ACTIVITY_LEVELS)}", level=level
            )
        with self.store.write() as conn:
            job = job_rows.get_job(conn, serial)
            if job is None:
                raise NotFound(f"no job with serial {serial}", serial=serial)
            self._log(
                conn,
                f"job {serial}",
                "job.message",
                message,
                workflow_id=job.workflow_id,
                job_serial=serial,
                level=level,
            )

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


def _job_state(state: str) -> JobState:
    try:
        return JobState(state)
    except ValueError:
        raise InvalidInput(
            f"unknown job state {state!r}; states: {', '.join(JobState)}", state=state
        ) from None


def next_sort_order(conn: Connection, workflow_id: int) -> str:
    return keys_after(run_rows.last_sort_order(conn, workflow_id), 1)[0]


def _check_no_live_job(conn: Connection, job: Job, target: JobState) -> None:
    """An Obsolete job comes back only if its task has no live job in its run."""
    for other in job_rows.live_jobs_in_run(conn, job.run_id):
        if other.task_id == job.task_id:
            raise Conflict(
                f"job {job.serial} cannot become {target}: its run has a live job of its task "
                f"already (job {other.serial}, {other.state}); a run has one live job per task",
                serial=job.serial,
                live=other.serial,
            )


def _check_all_outputs(task: Task, outputs: dict[str, Any]) -> None:
    """A new run's source job is Done with ``outputs``: every output of its interface must
    be there (a missing one would fail every job that reads it), after what
    ``check_outputs`` says of the values given."""
    problem = check_outputs(task.task_type, outputs)
    if problem:
        raise InvalidInput(problem, task=task.name)
    missing = [p for p in task.task_type.interface.outputs if p.key not in outputs]
    if missing:
        names = ", ".join(f"{p.key!r} ({p.type})" for p in missing)
        raise InvalidInput(
            f"the outputs of source task {task.name!r} lack {names}: give every output of its "
            "interface, or none to let a user (or a worker) give them",
            task=task.name,
            missing=[p.key for p in missing],
        )
