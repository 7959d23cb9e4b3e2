"""Workflows: import, create, export, start, stop, obsolete, lock, and the runs x tasks status
(the task operations are in ``runyard.operations.tasks``)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from runyard.errors import Conflict, InvalidInput, InvalidPackage
from runyard.models import Dependency, Job, Run, Task, TaskType, Workflow
from runyard.operations.giveback import GivingBack
from runyard.operations.reduce import held_reduces
from runyard.operations.stale import stale_in
from runyard.operations.tasks import TaskEditing
from runyard.packages import (
    Author,
    Documentation,
    DocumentFile,
    WorkflowPackage,
    resolve_workflow,
    workflow_package_bytes,
)
from runyard.states import (
    WORKFLOW_TRANSITIONS,
    JobState,
    Priority,
    WorkflowState,
    is_claimed,
)
from runyard.store import counts
from runyard.store import jobs as job_rows
from runyard.store import runs as run_rows
from runyard.store import task_types as task_type_rows
from runyard.store import workflows as workflow_rows

MAX_WORKFLOW_NAME = 200
EXPORT_VERSION = "1.0.0.0"  # the version of the package of a workflow made in the editor
DOCUMENT_FILES = ("description", "citation_cff", "readme")


def workflow_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a new workflow (it is part of addresses: no slash), or None."""
    if not name.strip():
        return "a workflow needs a name"
    if len(name) > MAX_WORKFLOW_NAME:
        return f"at most {MAX_WORKFLOW_NAME} characters, not {len(name)}"
    if name != name.strip():
        return "no spaces at its start or end"
    if any(c in name for c in "/\\") or any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "no slash, backslash or control character"
    return None


class WorkflowManager(TaskEditing):
    def import_package(
        self, package: WorkflowPackage, *, actor: str = "system", owner: int | None = None
    ) -> Workflow:
        """Create the workflow of a package, whole or not at all, owned by the user
        ``owner`` (None: by nobody, so admins only)."""
        problem = workflow_name_problem(package.name)
        if problem:
            raise InvalidPackage(
                f"the workflow name {package.name!r} cannot be used: {problem}; change it",
                file="metadata.json",
                field="name",
            )
        with self.store.write() as conn:

            def find(name: str, version: str | None) -> TaskType | None:
                found = task_type_rows.find(conn, name, version)
                return found[0] if found else None

            resolved = resolve_workflow(package, find)
            if workflow_rows.get_workflow(conn, name=package.name) is not None:
                raise Conflict(
                    f"a workflow named {package.name!r} exists already; rename the package's "
                    "metadata.json name to import it beside the existing one",
                    workflow=package.name,
                )
            now = self.now()
            workflow_id = workflow_rows.insert_workflow(
                conn, package.name, package.remarks, now, package_json(package), owner=owner
            )
            for spec, task_type in resolved:
                workflow_rows.insert_task(
                    conn,
                    workflow_id=workflow_id,
                    name=spec.name,
                    task_type_id=task_type.id,
                    inputs=spec.inputs,
                    now=now,
                )
            if package.layout:
                workflow_rows.set_workflow_layout(conn, workflow_id, package.layout, now)
            self._log(
                conn,
                actor,
                "workflow.import",
                f"imported workflow {package.name} with {len(resolved)} tasks",
                workflow_id=workflow_id,
            )
            workflow = workflow_rows.get_workflow(conn, id=workflow_id)
            assert workflow is not None
            return workflow

    def create(
        self, name: str, remarks: str = "", *, actor: str = "system", owner: int | None = None
    ) -> Workflow:
        """A new, empty ``Draft`` workflow (tasks are added to it afterwards), owned by the
        user ``owner`` (None: by nobody, so admins only)."""
        problem = workflow_name_problem(name)
        if problem:
            raise InvalidInput(f"workflow name {name!r}: {problem}", field="name")
        with self.store.write() as conn:
            if workflow_rows.get_workflow(conn, name=name) is not None:
                raise Conflict(
                    f"a workflow named {name!r} exists already; choose another name",
                    workflow=name,
                )
            workflow_id = workflow_rows.insert_workflow(
                conn, name, remarks, self.now(), owner=owner
            )
            self._log(
                conn, actor, "workflow.create", f"created workflow {name}", workflow_id=workflow_id
            )
            workflow = workflow_rows.get_workflow(conn, id=workflow_id)
            assert workflow is not None
            return workflow

    def export_package(self, name: str) -> bytes:
        """The workflow as a workflow package: its tasks, its remarks, its graph's layout,
        and what the package it was imported from said about it (version, display name,
        summary, author, dependencies, documentation files), so that it imports elsewhere
        the same."""
        with self.store.read() as conn:
            workflow = self._workflow(conn, name)
            tasks = self._tasks(conn, workflow.id)
            package = workflow_rows.workflow_package(conn, workflow.id) or {}
            layout = workflow_rows.workflow_layout(conn, workflow.id)
        return workflow_package_bytes(
            workflow.name,
            package.get("version") or EXPORT_VERSION,
            workflow.remarks,
            [(t.name, t.task_type, t.inputs) for t in tasks],
            display_name=package.get("display_name", ""),
            summary=package.get("summary", ""),
            dependencies=[Dependency(**d) for d in package.get("dependencies", ())],
            documentation=_documentation(workflow.remarks, package),
            layout=layout,
        )

    def get(self, name: str) -> tuple[Workflow, list[Task]]:
        with self.store.read() as conn:
            workflow = self._workflow(conn, name)
            return workflow, self._tasks(conn, workflow.id)

    def list_all(self) -> list[dict[str, Any]]:
        """Every workflow with the count of its live jobs by state."""
        with self.store.read() as conn:
            found = workflow_rows.list_workflows(conn)
            tallies = counts.read_many(conn, [w.id for w in found])
        nothing = counts.Counts(())
        return [
            {
                "workflow": workflow,
                "runs": tallies.get(workflow.id, nothing)[counts.RUNS],
                "jobs": tallies.get(workflow.id, nothing).live_jobs(),
            }
            for workflow in found
        ]

    def set_state(self, name: str, state: str, *, actor: str = "system") -> Workflow:
        """Start, stop (back to Draft) or obsolete a workflow. Obsoleting it gives back its
        Running jobs in the same transaction (their workers stop the scripts; starting the
        workflow again lets them be claimed again); stopping it lets them finish, and
        neither starts a new job."""
        target = WorkflowState(state)
        with self.store.write() as conn:
            workflow = self._workflow(conn, name)
            if workflow.locked:
                raise Conflict(
                    f"workflow {name!r} is locked; an admin must unlock it first", workflow=name
                )
            current = WorkflowState(workflow.state)
            if current == target:
                return workflow
            if (current, target) not in WORKFLOW_TRANSITIONS:
                raise Conflict(
                    f"workflow {name!r} cannot go from {current} to {target}", workflow=name
                )
            given: list[int] = []
            if target == WorkflowState.OBSOLETE:  # before locking the workflow's row: see there
                given = self._giving_back()._give_back_workflow(conn, workflow, actor)
            workflow_rows.lock_workflow_row(conn, workflow.id)
            if not workflow_rows.set_workflow_state(
                conn, workflow.id, target, {current}, self.now()
            ):
                raise Conflict(f"workflow {name!r} changed state meanwhile", workflow=name)
            self._log(
                conn,
                actor,
                "workflow.state",
                f"workflow {name}: {current} -> {target}"
                + (f"; {len(given)} Running jobs given back" if given else ""),
                workflow_id=workflow.id,
            )
            updated = workflow_rows.get_workflow(conn, id=workflow.id)
            assert updated is not None
        if target == WorkflowState.STARTED:  # its Queued jobs may be claimed now
            self.changed.notify()
        return updated

    def _giving_back(self) -> GivingBack:
        """The job operations that a workflow state change needs (not inherited: a
        ``WorkflowManager`` is not a ``JobManager``, whose ``get`` takes a job serial)."""
        return GivingBack(
            self.store,
            self.settings,
            now=self.now,
            changed=self.changed,
            task_lists=self.task_lists,
        )

    def set_locked(self, name: str, locked: bool, *, actor: str = "system") -> Workflow:
        with self.store.write() as conn:
            workflow = self._workflow(conn, name)
            workflow_rows.set_workflow_locked(conn, workflow.id, locked, self.now())
            self._log(
                conn,
                actor,
                "workflow.lock",
                f"workflow {name} {'locked' if locked else 'unlocked'}",
                workflow_id=workflow.id,
            )
            updated = workflow_rows.get_workflow(conn, id=workflow.id)
            assert updated is not None
            return updated

    def layout(self, name: str) -> dict[str, Any] | None:
        """Where the workflow graph draws each task, or None when no layout is saved."""
        with self.store.read() as conn:
            return workflow_rows.workflow_layout(conn, self._workflow(conn, name).id)

    def set_layout(
        self, name: str, positions: dict[str, dict[str, float]], *, actor: str = "system"
    ) -> dict[str, Any]:
        """Save where the workflow graph draws each task; every name must be a task of it.
        Tasks left out keep no position (the graph places them)."""
        with self.store.write() as conn:
            workflow = self._workflow(conn, name)
            known = {t.name for t in self._tasks(conn, workflow.id)}
            unknown = sorted(set(positions) - known)
            if unknown:
                raise InvalidInput(
                    f"workflow {name!r} has no task named {', '.join(map(repr, unknown))}; "
                    f"its tasks: {', '.join(sorted(known)) or '(none)'}",
                    field="positions",
                )
            layout = {"positions": {t: {"x": p["x"], "y": p["y"]} for t, p in positions.items()}}
            workflow_rows.set_workflow_layout(conn, workflow.id, layout, self.now())
            self._log(
                conn,
                actor,
                "workflow.layout",
                f"workflow {name} layout saved",
                workflow_id=workflow.id,
            )
            return layout

    def task_counts(self, name: str) -> dict[str, dict[str, int]]:
        """The live jobs of each task by state (what the workflow graph shows on a node)."""
        with self.store.read() as conn:
            workflow = self._workflow(conn, name)
            counts = workflow_rows.count_by_task_and_state(conn, workflow.id)
            return {t.name: counts.get(t.name, {}) for t in self._tasks(conn, workflow.id)}

    def status(self, name: str) -> dict[str, Any]:
        """The runs x tasks table: every run with its live job per task."""
        with self.store.read() as conn:
            workflow = self._workflow(conn, name)
            tasks = self._tasks(conn, workflow.id)
            runs = run_rows.list_runs(conn, workflow.id)
            jobs = job_rows.jobs_of_workflow(conn, workflow.id)
            stale = stale_in(conn, tasks, jobs)
            reduce_held = held_reduces(conn, self._graph(conn, workflow.id))
        task_names = {t.id: t.name for t in tasks}
        reduce_ids = {t.id for t in tasks if t.task_type.interface.kind == "reduce"}
        by_run: dict[int, dict[str, Any]] = {r.id: {} for r in runs}
        reduce: dict[str, Any] = {}
        for job in jobs:
            cell = {
                "serial": job.serial,
                "state": job.state,
                "outputs": job.outputs,
                "error": job.error,
            }
            if job.serial in stale:
                cell["stale"] = stale[job.serial]
            if is_claimed(job):
                cell["claimed"] = True
            if job.task_id in reduce_ids:
                reduce[task_names[job.task_id]] = cell
            elif job.run_id in by_run:
                by_run[job.run_id][task_names[job.task_id]] = cell
        held, busy = held_jobs(workflow, runs, jobs, reduce_ids)
        return {
            "workflow": workflow.name,
            "state": workflow.state,
            # From the same snapshot as the runs, so that a waiting client never sees
            # "idle" next to a job that was still running.
            "idle": not busy,
            "held": held,
            "tasks": [t.name for t in tasks],
            # The live job of each reduce task (one per workflow, not per run).
            "reduce": reduce,
            # Why a reduce task has no job queued: {task: "waiting for 3 runs (...)"}.
            "reduce_held": reduce_held,
            "runs": [
                {
                    "id": r.id,
                    "name": r.name,
                    "sort_order": r.sort_order,
                    "priority": r.priority,
                    "entity": r.entity.to_json() if r.entity else None,
                    "jobs": by_run[r.id],
                }
                for r in runs
            ],
        }


def held_jobs(
    workflow: Workflow, runs: list[Run], jobs: list[Job], reduce_ids: set[int]
) -> tuple[dict[str, int], bool]:
    """Whether any job can still run (one is Running, or Queued where a worker may claim
    it), and how many Queued jobs cannot until someone acts, by why: ``workflow`` (it is
    not Started), ``obsolete_runs`` (restore the run), ``paused_runs`` (its priority).
    ``runs``: the workflow's live runs (not obsolete)."""
    paused = {r.id for r in runs if r.priority == Priority.PAUSED}
    live = {r.id for r in runs}
    held: dict[str, int] = {}
    busy = False
    for job in jobs:
        if job.state == JobState.RUNNING:
            busy = True  # it finishes whatever its workflow or run became meanwhile
            continue
        if job.state != JobState.QUEUED:
            continue
        if workflow.state != WorkflowState.STARTED:
            why = "workflow"
        elif job.run_id not in live and job.task_id not in reduce_ids:
            why = "obsolete_runs"
        elif job.run_id in paused:
            why = "paused_runs"
        else:
            busy = True
            continue
        held[why] = held.get(why, 0) + 1
    return held, busy


def package_json(package: WorkflowPackage) -> dict[str, Any]:
    """What a workflow package says about its workflow beyond its name, remarks and tasks,
    kept with the workflow (``workflows.package``) for its export."""
    doc = package.documentation
    files = {"description": doc.description, "citation_cff": doc.citation_cff, "readme": doc.readme}
    return {
        "version": package.version,
        "display_name": package.display_name,
        "summary": package.summary,
        "author": asdict(doc.author),
        "dependencies": [asdict(d) for d in package.dependencies],
        "documentation": {key: None if f is None else asdict(f) for key, f in files.items()},
    }


def _documentation(remarks: str, package: dict[str, Any]) -> Documentation:
    """The documentation of a workflow from ``package_json`` (empty for a workflow made in
    the editor)."""
    files = package.get("documentation") or {}
    found = {key: DocumentFile(**files[key]) if files.get(key) else None for key in DOCUMENT_FILES}
    return Documentation(
        remarks=remarks,
        author=Author(**package.get("author", {})),
        description=found["description"],
        citation_cff=found["citation_cff"],
        readme=found["readme"],
    )
