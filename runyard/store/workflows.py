"""Statements on workflows and their tasks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, delete, func, insert, select, update

from runyard.models import InputSource, Task, TaskInput, Workflow
from runyard.store import counts
from runyard.store import task_types as task_type_rows
from runyard.store.schema import jobs, task_types, tasks, workflows

# Every column but ``package`` (documentation text, read only for an export) and ``layout``.
_WORKFLOW_COLUMNS = [c for c in workflows.c if c.name not in ("package", "layout")]


def workflow_from_row(row: Row[Any]) -> Workflow:
    m = row._mapping
    return Workflow(
        id=m["id"],
        name=m["name"],
        state=m["state"],
        locked=m["locked"],
        remarks=m["remarks"],
        created_at=m["created_at"],
    )


def insert_workflow(
    conn: Connection,
    name: str,
    remarks: str,
    now: datetime,
    package: dict[str, Any] | None = None,
    *,
    owner: int | None = None,
) -> int:
    """A new Draft workflow of the user ``owner``; ``package``: what its workflow package
    said about it."""
    result = conn.execute(
        insert(workflows).values(
            name=name,
            state="Draft",
            locked=False,
            remarks=remarks,
            created_at=now,
            updated_at=now,
            package=package,
            owner_id=owner,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def get_workflow(
    conn: Connection, *, name: str | None = None, id: int | None = None
) -> Workflow | None:
    query = select(*_WORKFLOW_COLUMNS)
    query = (
        query.where(workflows.c.name == name)
        if name is not None
        else query.where(workflows.c.id == id)
    )
    row = conn.execute(query).first()
    return workflow_from_row(row) if row else None


def workflow_package(conn: Connection, workflow_id: int) -> dict[str, Any] | None:
    """What the workflow package a workflow was imported from said about it (its display
    name, summary, author, dependencies, documentation files), or None."""
    value = conn.execute(
        select(workflows.c.package).where(workflows.c.id == workflow_id)
    ).scalar_one_or_none()
    return dict(value) if value else None


def workflow_layout(conn: Connection, workflow_id: int) -> dict[str, Any] | None:
    """Where the workflow graph draws each task, ``{"positions": {task: {"x", "y"}}}``."""
    value = conn.execute(
        select(workflows.c.layout).where(workflows.c.id == workflow_id)
    ).scalar_one_or_none()
    return dict(value) if value else None


def set_workflow_layout(
    conn: Connection, workflow_id: int, layout: dict[str, Any], now: datetime
) -> None:
    conn.execute(
        update(workflows).where(workflows.c.id == workflow_id).values(layout=layout, updated_at=now)
    )


def count_by_task_and_state(conn: Connection, workflow_id: int) -> dict[str, dict[str, int]]:
    """The live jobs of a workflow by task name and state (tasks without jobs left out)."""
    found = counts.read(conn, workflow_id)
    names = select(tasks.c.id, tasks.c.name).where(tasks.c.workflow_id == workflow_id)
    by_task = {name: found.live_jobs([task_id]) for task_id, name in conn.execute(names)}
    return {name: jobs_by_state for name, jobs_by_state in by_task.items() if jobs_by_state}


def lock_workflow_row(conn: Connection, workflow_id: int) -> None:
    """Serialise writers of one workflow (PostgreSQL row lock; SQLite has one writer).
    ``FOR NO KEY UPDATE``: inserting a run or a job (which takes a key-share lock on its
    workflow's row) does not wait for it, so a finish creating followers never waits for a
    workflow state change that waits for the finish's run."""
    conn.execute(
        select(workflows.c.id).where(workflows.c.id == workflow_id).with_for_update(key_share=True)
    )


def list_workflows(conn: Connection) -> list[Workflow]:
    return [
        workflow_from_row(r)
        for r in conn.execute(select(*_WORKFLOW_COLUMNS).order_by(workflows.c.name))
    ]


def set_workflow_state(
    conn: Connection, workflow_id: int, state: str, from_states: set[str], now: datetime
) -> bool:
    result = conn.execute(
        update(workflows)
        .where(workflows.c.id == workflow_id, workflows.c.state.in_(from_states))
        .values(state=state, updated_at=now)
    )
    return result.rowcount == 1


def set_workflow_locked(conn: Connection, workflow_id: int, locked: bool, now: datetime) -> None:
    conn.execute(
        update(workflows).where(workflows.c.id == workflow_id).values(locked=locked, updated_at=now)
    )


def source_to_json(source: InputSource) -> dict[str, Any]:
    data: dict[str, Any] = {"mode": source.mode}
    if source.mode == "fixed":
        data["fixed_value"] = source.fixed_value
    elif source.mode == "output":
        data["task"], data["key"] = source.task, source.key
    elif source.mode == "define_on_first" and source.template is not None:
        data["template"] = source.template
    return data


def _task_inputs(data: list[dict[str, Any]]) -> tuple[TaskInput, ...]:
    return tuple(TaskInput(key=i["key"], source=InputSource(**i["source"])) for i in data)


def insert_task(
    conn: Connection,
    *,
    workflow_id: int,
    name: str,
    task_type_id: int,
    inputs: tuple[TaskInput, ...],
    now: datetime,
) -> int:
    position = conn.execute(
        select(func.coalesce(func.max(tasks.c.position), -1) + 1).where(
            tasks.c.workflow_id == workflow_id
        )
    ).scalar_one()
    result = conn.execute(
        insert(tasks).values(
            workflow_id=workflow_id,
            name=name,
            position=position,
            task_type_id=task_type_id,
            inputs=[{"key": i.key, "source": source_to_json(i.source)} for i in inputs],
            created_at=now,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    bump_tasks_version(conn, workflow_id)
    return int(key[0])


def bump_tasks_version(conn: Connection, workflow_id: int) -> None:
    """Every statement that changes a workflow's tasks calls this (task list caches)."""
    conn.execute(
        update(workflows)
        .where(workflows.c.id == workflow_id)
        .values(tasks_version=workflows.c.tasks_version + 1)
    )


def tasks_version(conn: Connection, workflow_id: int) -> int | None:
    value = conn.execute(_TASKS_VERSION, {"b_workflow": workflow_id}).scalar()
    return None if value is None else int(value)


# Read by every report and claim (task graph caches): built once.
_TASKS_VERSION = select(workflows.c.tasks_version).where(workflows.c.id == bindparam("b_workflow"))


def list_tasks(conn: Connection, workflow_id: int) -> list[Task]:
    """The tasks of a workflow in their order, each with its task type."""
    rows = conn.execute(
        select(tasks, task_types)
        .join(task_types, task_types.c.id == tasks.c.task_type_id)
        .where(tasks.c.workflow_id == workflow_id)
        .order_by(tasks.c.position)
    )
    result = []
    for row in rows:
        m = row._mapping
        task_type = task_type_rows.from_mapping({c.name: m[c] for c in task_types.c})
        result.append(
            Task(
                id=m[tasks.c.id],
                workflow_id=workflow_id,
                name=m[tasks.c.name],
                position=m[tasks.c.position],
                task_type=task_type,
                inputs=_task_inputs(m[tasks.c.inputs]),
                spawned_by=m[tasks.c.spawned_by_task_id],
            )
        )
    return result


def set_task(conn: Connection, task: Task) -> None:
    """Store a task's task type version and input sources."""
    conn.execute(
        update(tasks)
        .where(tasks.c.id == task.id)
        .values(
            task_type_id=task.task_type.id,
            inputs=[{"key": i.key, "source": source_to_json(i.source)} for i in task.inputs],
        )
    )
    bump_tasks_version(conn, task.workflow_id)


def delete_tasks(conn: Connection, workflow_id: int, task_ids: list[int]) -> None:
    """Delete tasks with their jobs (the rows of the jobs go with them)."""
    conn.execute(delete(jobs).where(jobs.c.task_id.in_(task_ids)))
    conn.execute(delete(tasks).where(tasks.c.id.in_(task_ids)))
    bump_tasks_version(conn, workflow_id)
