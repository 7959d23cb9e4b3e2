"""Editing a workflow's tasks: add one (with jobs in the runs that can have one), edit its
sources or version and delete it (with its followers) while the workflow is stopped."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Connection

from runyard.errors import Conflict, InvalidInput, NotFound
from runyard.models import Task, Workflow
from runyard.operations.reduce import Reducing
from runyard.states import JobState, WorkflowState, downstream_tasks, find_cycle, new_job
from runyard.store import jobs as job_rows
from runyard.store import runs as run_rows
from runyard.store import task_types as task_type_rows
from runyard.store import workflows as workflow_rows
from runyard.store.workflows import source_to_json
from runyard.validation import spawned_task_inputs


class TaskEditing(Reducing):
    """The task operations of ``WorkflowManager``."""

    def add_task(
        self,
        workflow_name: str,
        name: str,
        *,
        task_type_name: str,
        task_type_version: str | None = None,
        inputs: Sequence[dict[str, Any]] = (),
        actor: str = "system",
    ) -> tuple[Task, int]:
        """Add a task at the end of a workflow (inputs checked as a package's are) and give it
        a job in every run whose upstream jobs are Done; the task and how many jobs."""
        with self._write_and_notify() as conn:
            workflow = self._workflow(conn, workflow_name)
            if workflow.locked or workflow.state == WorkflowState.OBSOLETE:
                why = "locked" if workflow.locked else "Obsolete"
                raise Conflict(
                    f"workflow {workflow.name!r} is {why}; no task can be added to it",
                    workflow=workflow.name,
                )
            tasks = self._tasks(conn, workflow.id)
            if any(t.name == name for t in tasks):
                raise Conflict(
                    f"workflow {workflow.name!r} has a task named {name!r} already",
                    workflow=workflow.name,
                    task=name,
                )
            found = task_type_rows.find(conn, task_type_name, task_type_version)
            if not found:
                which = f"version {task_type_version}" if task_type_version else "any version"
                raise NotFound(
                    f"task type {task_type_name!r} ({which}) is not installed",
                    task_type=task_type_name,
                )
            checked = spawned_task_inputs(found[0], list(inputs), tasks)
            task_id = workflow_rows.insert_task(
                conn,
                workflow_id=workflow.id,
                name=name,
                task_type_id=found[0].id,
                inputs=checked,
                now=self.now(),
            )
            task = next(t for t in workflow_rows.list_tasks(conn, workflow.id) if t.id == task_id)
            created = self._jobs_for_existing_runs(conn, task)
            self._refresh_reduces(conn, workflow.id)
            self._log(
                conn,
                actor,
                "task.add",
                f"added task {name} ({found[0].name} {found[0].version}) with {created} jobs",
                workflow_id=workflow.id,
            )
            return task, created

    def _jobs_for_existing_runs(self, conn: Connection, task: Task) -> int:
        """Create the jobs of a new task in the runs whose upstream jobs are all Done."""
        upstream = task.upstream_names()
        if not upstream or task.task_type.interface.kind == "reduce":
            return 0
        names = {t.id: t.name for t in workflow_rows.list_tasks(conn, task.workflow_id)}
        done: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
        for job in job_rows.jobs_of_workflow(conn, task.workflow_id):
            if job.state == JobState.DONE:
                done[job.run_id][names[job.task_id]] = job.outputs
        live_runs = {r.id for r in run_rows.list_runs(conn, task.workflow_id)}
        now, created = self.now(), 0
        for run_id, outputs in done.items():
            if run_id not in live_runs or not upstream.issubset(outputs):
                continue
            inputs, state = new_job(task, outputs)
            serial = job_rows.insert_job(
                conn,
                if_no_live_job=True,
                workflow_id=task.workflow_id,
                run_id=run_id,
                task_id=task.id,
                task_type_id=task.task_type.id,
                state=state.value,
                inputs=inputs,
                created_at=now,
            )
            created += serial is not None
        return created

    def edit_task(
        self,
        workflow_name: str,
        task_name: str,
        *,
        inputs: Sequence[dict[str, Any]] | None = None,
        task_type_version: str | None = None,
        actor: str = "system",
    ) -> Task:
        """Change a task's input sources and/or its task type version, while the workflow is
        stopped (Draft). Its Done jobs, and what follows them, become stale."""
        with self._write_and_notify() as conn:
            workflow, tasks, task = self._editable(conn, workflow_name, task_name)
            task_type = task.task_type
            if task_type_version is not None:
                found = task_type_rows.find(conn, task_type.name, task_type_version)
                if not found:
                    raise NotFound(
                        f"task type {task_type.name} {task_type_version} is not installed",
                        task_type=task_type.name,
                        version=task_type_version,
                    )
                task_type = found[0]
            entries = inputs if inputs is not None else [
                {"key": i.key, "source": source_to_json(i.source)} for i in task.inputs
            ]  # fmt: skip
            others = [t for t in tasks if t.id != task.id]
            checked = spawned_task_inputs(task_type, list(entries), others)
            edited = replace(task, task_type=task_type, inputs=checked)
            cycle = find_cycle({t.name: t.upstream_names() for t in [*others, edited]})
            if cycle:
                raise InvalidInput(
                    f"these sources would make a cycle: {' -> '.join(cycle)}", task=task.name
                )
            workflow_rows.set_task(conn, edited)
            self._log(
                conn,
                actor,
                "task.edit",
                f"task {task.name} edited ({task_type.name} {task_type.version})",
                workflow_id=workflow.id,
            )
            return edited

    def delete_task(
        self, workflow_name: str, task_name: str, *, followers: bool = False, actor: str = "system"
    ) -> list[str]:
        """Delete a task and its jobs, while the workflow is stopped; with ``followers``,
        every task downstream of it too (else a task that others take inputs from is kept).
        The names of the tasks deleted."""
        with self._write_and_notify() as conn:
            workflow, tasks, task = self._editable(conn, workflow_name, task_name)
            downstream = downstream_tasks(task.name, tasks)
            if downstream and not followers:
                raise Conflict(
                    f"tasks {', '.join(sorted(downstream))} take inputs from {task.name}; "
                    "delete them with it (--followers) or connect them elsewhere first",
                    task=task.name,
                )
            doomed = [t for t in tasks if t.name in downstream | {task.name}]
            running = job_rows.count_by_state(conn, workflow.id, [t.id for t in doomed])
            if running.get(JobState.RUNNING, 0):
                raise Conflict(
                    f"{running[JobState.RUNNING]} jobs of these tasks are still Running; "
                    "wait for them or abort them first",
                    task=task.name,
                )
            workflow_rows.delete_tasks(conn, workflow.id, [t.id for t in doomed])
            self._refresh_reduces(conn, workflow.id)
            names = [t.name for t in doomed]
            self._log(
                conn,
                actor,
                "task.delete",
                f"deleted task(s) {', '.join(names)}",
                workflow_id=workflow.id,
            )
            return names

    def _editable(
        self, conn: Connection, workflow_name: str, task_name: str
    ) -> tuple[Workflow, list[Task], Task]:
        workflow = self._workflow(conn, workflow_name)
        if workflow.locked or workflow.state != WorkflowState.DRAFT:
            why = "locked" if workflow.locked else workflow.state
            raise Conflict(
                f"workflow {workflow.name!r} is {why}; tasks are edited while it is stopped "
                f"(runyard workflow stop {workflow.name})",
                workflow=workflow.name,
            )
        tasks = self._tasks(conn, workflow.id)
        return workflow, tasks, self._task(tasks, task_name, workflow)
