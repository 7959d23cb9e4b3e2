"""Jobs and runs as users and scripts ask for them: a new run at a source task, a run's
priority, a job's state, its log and its messages to the activity log.

The engine underneath is in two bases of ``JobManager``: ``transitions.py`` (every state
change, as a guarded update, and the followers of a Done job) and ``restarts.py`` (a new job
of a task, one or many at once).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from runyard.errors import Conflict, InvalidInput, NotFound
from runyard.models import Entity, Job, Task, Workflow
from runyard.operations.restarts import Restarting
from runyard.sortorder import keys_after
from runyard.states import JobState, Priority, WorkflowState
from runyard.store import jobs as job_rows
from runyard.store import runs as run_rows
from runyard.validation import check_outputs

ACTIVITY_LEVELS = ("debug", "info", "warning", "error")
MAX_LOG_CHARS = 1024 * 1024  # the job log keeps the last MiB of output


class JobManager(Restarting):
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

    # -- jobs ---------------------------------------------------------------------------

    def get(self, serial: int) -> Job:
        with self.store.read() as conn:
            job = job_rows.get_job(conn, serial)
        if job is None:
            raise NotFound(f"no job with serial {serial}", serial=serial)
        return job

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


def _job_state(state: str) -> JobState:
    try:
        return JobState(state)
    except ValueError:
        raise InvalidInput(
            f"unknown job state {state!r}; states: {', '.join(JobState)}", state=state
        ) from None


def next_sort_order(conn: Connection, workflow_id: int) -> str:
    return keys_after(run_rows.last_sort_order(conn, workflow_id), 1)[0]


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
