"""Job state changes, the core of the job engine: a job created in its first state, a state
change, and the followers of a job that became Done.

Every state change goes through ``_transition``: the table in ``runyard.states`` says which
sources are legal, the store applies a guarded update, and a transition into Done creates
the follower jobs in the same transaction. The base of ``JobManager`` (restarts build on it,
see ``restarts.py``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from runyard.errors import Conflict, IllegalTransition, InvalidInput, NotFound, StaleLease
from runyard.models import Job, Task, Workflow
from runyard.operations.reduce import Reducing
from runyard.states import (
    JobState,
    check_api_transition,
    check_transition,
    decide_followers,
    resolve_inputs,
    sources_of,
)
from runyard.store import jobs as job_rows
from runyard.store import runs as run_rows
from runyard.taskgraph import TaskGraph
from runyard.validation import check_outputs


class Transitions(Reducing):
    # -- new jobs -----------------------------------------------------------------------

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

    def _set_state(self, conn: Connection, current: Job, target: JobState) -> Job:
        """A state change asked for from outside the worker protocol, checked."""
        check_api_transition(current.serial, current.state, target)
        values: dict[str, Any] = {"lease_id": None}
        if target == JobState.DONE:
            values["finished_at"] = self.now()
        return self._transition(conn, current.serial, target, **values)


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
