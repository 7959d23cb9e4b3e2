"""Statements on task types (every installed version of every name)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select

from runyard.models import Dependency, Interface, Parameter, TaskType
from runyard.store.schema import task_types

PARAMETER_FIELDS = ("key", "type", "supported_modes", "default", "description")


def _parameter(data: dict[str, Any]) -> Parameter:
    return Parameter(
        key=data["key"],
        type=data["type"],
        supported_modes=tuple(data.get("supported_modes", ())),
        default=data.get("default"),
        description=data.get("description", ""),
        constraints={k: v for k, v in data.items() if k not in PARAMETER_FIELDS},
    )


def interface_from_json(data: dict[str, Any]) -> Interface:
    return Interface(
        kind=data["kind"],
        inputs=tuple(_parameter(p) for p in data.get("inputs", ())),
        outputs=tuple(_parameter(p) for p in data.get("outputs", ())),
    )


def parameter_to_json(p: Parameter) -> dict[str, Any]:
    data: dict[str, Any] = {"key": p.key, "type": p.type, "description": p.description}
    if p.supported_modes:
        data["supported_modes"] = list(p.supported_modes)
    if p.default is not None:
        data["default"] = p.default
    return data | p.constraints


def interface_to_json(interface: Interface) -> dict[str, Any]:
    return {
        "kind": interface.kind,
        "inputs": [parameter_to_json(p) for p in interface.inputs],
        "outputs": [parameter_to_json(p) for p in interface.outputs],
    }


def from_row(row: Row[Any]) -> TaskType:
    return from_mapping(row._mapping)


def from_mapping(m: Mapping[Any, Any]) -> TaskType:
    return TaskType(
        id=m["id"],
        name=m["name"],
        version=m["version"],
        display_name=m["display_name"],
        summary=m["summary"],
        author=m["author"],
        entry_point=m["entry_point"],
        timeout_seconds=m["timeout_seconds"],
        jobs_per_process=m["jobs_per_process"],
        retries=m["retries"],
        resources=m["resources"] or {},
        dependencies=tuple(Dependency(**d) for d in m["dependencies"]),
        interface=interface_from_json(m["interface"]),
        path=m["path"],
    )


def insert_task_type(conn: Connection, tt: TaskType, version_key: str, now: datetime) -> int:
    result = conn.execute(
        insert(task_types).values(
            name=tt.name,
            version=tt.version,
            version_key=version_key,
            kind=tt.interface.kind,
            display_name=tt.display_name,
            summary=tt.summary,
            author=tt.author,
            entry_point=tt.entry_point,
            timeout_seconds=tt.timeout_seconds,
            jobs_per_process=tt.jobs_per_process,
            retries=tt.retries,
            resources=dict(tt.resources),
            dependencies=[{"name": d.name, "version": d.version} for d in tt.dependencies],
            interface=interface_to_json(tt.interface),
            path=tt.path,
            installed_at=now,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def find(conn: Connection, name: str, version: str | None = None) -> list[TaskType]:
    """Installed versions of ``name``, newest first (just ``version`` if given)."""
    query = select(task_types).where(task_types.c.name == name)
    if version is not None:
        query = query.where(task_types.c.version == version)
    rows = conn.execute(query.order_by(task_types.c.version_key.desc()))
    return [from_row(r) for r in rows]


def get(conn: Connection, task_type_id: int) -> TaskType | None:
    row = conn.execute(select(task_types).where(task_types.c.id == task_type_id)).first()
    return from_row(row) if row else None


def list_all(conn: Connection) -> list[TaskType]:
    rows = conn.execute(
        select(task_types).order_by(task_types.c.name, task_types.c.version_key.desc())
    )
    return [from_row(r) for r in rows]
