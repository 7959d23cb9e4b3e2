"""HTTP handlers of the operations on a running study: runs (rename, copy, obsolete,
restore), jobs (information, rename, submit a user's values) and tasks (add, edit, delete,
re-run the stale results)."""

from __future__ import annotations

from typing import Any

from runyard.server import schemas as s
from runyard.server.deps import Caller, Ry, require, require_job_access

# -- runs -------------------------------------------------------------------------------------


def rename_run(run_id: s.Int32, body: s.Name, ry: Ry, caller: Caller) -> dict[str, Any]:
    require(caller, "user")
    ry.access.run(caller, run_id, "operate")
    return ry.runs.rename(run_id, body.name, actor=caller.name).to_json()


def copy_run(run_id: s.Int32, body: s.OptionalName, ry: Ry, caller: Caller) -> dict[str, Any]:
    """A new run with the same entity and source outputs (its followers are created)."""
    require(caller, "user")
    ry.access.run(caller, run_id, "operate")
    return ry.runs.copy(run_id, body.name, actor=caller.name).to_json()


def obsolete_run(run_id: s.Int32, ry: Ry, caller: Caller) -> dict[str, Any]:
    """Obsolete a run: it leaves the table, its running jobs are stopped and given back, no
    job of it starts, reduces leave it out."""
    require(caller, "user")
    ry.access.run(caller, run_id, "operate")
    return ry.runs.set_obsolete(run_id, True, actor=caller.name).to_json()


def restore_run(run_id: s.Int32, ry: Ry, caller: Caller) -> dict[str, Any]:
    """Restore an obsolete run as it was."""
    require(caller, "user")
    ry.access.run(caller, run_id, "operate")
    return ry.runs.set_obsolete(run_id, False, actor=caller.name).to_json()


# -- jobs -------------------------------------------------------------------------------------


def get_job(serial: s.Int32, ry: Ry, caller: Caller) -> dict[str, Any]:
    """The job information: the job, its run and task, whether it is stale, its provenance."""
    require_job_access(caller, serial)
    ry.access.job(caller, serial)
    job, info = ry.runs.info(serial)
    if job.state == "Queued":
        # A job no registered worker can run waits for one: the packages it lacks.
        info["worker_missing"] = ry.environments.missing_for_task_type(job.task_type_id)
    return s.job_json(job) | info


def rename_job(serial: s.Int32, body: s.Name, ry: Ry, caller: Caller) -> dict[str, Any]:
    require(caller, "user")
    ry.access.job(caller, serial, "operate")
    return s.job_json(ry.runs.rename_job(serial, body.name, actor=caller.name))


def submit_job(serial: s.Int32, body: s.Submission, ry: Ry, caller: Caller) -> dict[str, Any]:
    """A user's values for a Waiting job: ``inputs`` it asks for, or an interactive job's
    ``outputs``. Refused with the problem of each field (``details.errors``)."""
    require(caller, "user")
    ry.access.job(caller, serial, "operate")
    job = ry.runs.submit(serial, inputs=body.inputs, outputs=body.outputs, actor=caller.name)
    return s.job_json(job)


# -- tasks ------------------------------------------------------------------------------------


def add_task(name: str, body: s.NewTask, ry: Ry, caller: Caller) -> dict[str, Any]:
    """Add a task to a workflow; it gets a job in every run whose upstream jobs are Done."""
    require(caller, "user")
    ry.access.workflow(caller, name, "edit")
    task, created = ry.workflows.add_task(
        name,
        body.name,
        task_type_name=body.task_type.name,
        task_type_version=body.task_type.version,
        inputs=[i.model_dump() for i in body.inputs],
        actor=caller.name,
    )
    return s.task_json(task) | {"jobs_created": created}


def edit_task(name: str, task: str, body: s.TaskEdit, ry: Ry, caller: Caller) -> dict[str, Any]:
    """Change a task's input sources and/or task type version (workflow stopped)."""
    require(caller, "user")
    ry.access.workflow(caller, name, "edit")
    inputs = None if body.inputs is None else [i.model_dump() for i in body.inputs]
    edited = ry.workflows.edit_task(
        name, task, inputs=inputs, task_type_version=body.task_type_version, actor=caller.name
    )
    return s.task_json(edited)


def delete_task(
    name: str, task: str, ry: Ry, caller: Caller, followers: bool = False
) -> dict[str, Any]:
    """Delete a task and its jobs (workflow stopped); with ``followers=true`` its followers."""
    require(caller, "user")
    ry.access.workflow(caller, name, "edit")
    return {"deleted": ry.workflows.delete_task(name, task, followers=followers)}


def rerun_stale(name: str, body: s.RerunStale, ry: Ry, caller: Caller) -> dict[str, Any]:
    """Restart the stale jobs of a workflow (or of one task) in dependency order."""
    require(caller, "user")
    ry.access.workflow(caller, name, "edit")
    return ry.runs.rerun_stale(name, body.task, actor=caller.name)


def set_layout(name: str, body: s.Layout, ry: Ry, caller: Caller) -> dict[str, Any]:
    """Save where the workflow graph draws each task (any task name not of it is refused)."""
    require(caller, "user")
    ry.access.workflow(caller, name, "edit")
    positions = {task: p.model_dump() for task, p in body.positions.items()}
    return ry.workflows.set_layout(name, positions, actor=caller.name)


def task_counts(name: str, ry: Ry, caller: Caller) -> dict[str, Any]:
    """The live jobs of each task by state: ``{"tasks": {task: {state: count}}}``."""
    ry.access.workflow(caller, name)
    return {"tasks": ry.workflows.task_counts(name)}
