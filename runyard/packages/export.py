"""Exporting a workflow as a workflow package (``.xfp``) that imports elsewhere."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from runyard.errors import InvalidPackage
from runyard.models import Dependency, InputSource, TaskInput, TaskType
from runyard.packages import schemas
from runyard.packages.documentation import Author, Documentation
from runyard.packages.documents import shown
from runyard.packages.metadata import METADATA
from runyard.packages.workflows import LAYOUT, TASKS, parse_workflow

ExportTask = tuple[str, TaskType, tuple[TaskInput, ...]]


def workflow_package_bytes(
    name: str,
    version: str,
    remarks: str,
    tasks: Sequence[ExportTask],
    *,
    display_name: str = "",
    summary: str = "",
    dependencies: Sequence[Dependency] = (),
    documentation: Documentation | None = None,
    layout: dict[str, Any] | None = None,
) -> bytes:
    """A workflow package (``.xfp`` zip) of ``tasks``; upstream tasks are put first.

    ``display_name``, ``summary``, ``dependencies`` and ``documentation`` (the author and the
    documentation files, as a workflow package brought them) are written back as they were
    imported; ``layout`` (where the workflow graph draws the tasks) goes to layout.json. The
    result is parsed once more before it is returned, so it always imports.
    """
    ordered = _upstream_first(tasks)
    index = {task_name: number for number, (task_name, _, _) in enumerate(ordered)}
    metadata: dict[str, Any] = {
        "package_format": schemas.WORKFLOW_FORMAT,
        "name": name,
        "version": version,
    }
    if display_name:
        metadata["display_name"] = display_name
    if summary:
        metadata["summary"] = summary
    metadata["remarks"] = remarks
    if dependencies:
        metadata["dependencies"] = [{"name": d.name, "version": d.version} for d in dependencies]
    documents = _documentation_files(metadata, documentation or Documentation())
    tasks_json = {
        "tasks": [
            {
                "name": task_name,
                "task_type": {"name": task_type.name, "version": task_type.version},
                "inputs": [{"key": i.key, "source": _source_json(i.source, index)} for i in inputs],
            }
            for task_name, task_type, inputs in ordered
        ]
    }
    files = {**documents, METADATA: _json_bytes(metadata), TASKS: _json_bytes(tasks_json)}
    if layout and layout.get("positions"):
        files[LAYOUT] = _json_bytes({"positions": layout["positions"]})
    parse_workflow(files)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file_name, data in files.items():
            archive.writestr(zipfile.ZipInfo(file_name, date_time=(1980, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()


def _documentation_files(metadata: dict[str, Any], doc: Documentation) -> dict[str, bytes]:
    """Add the author and the documentation fields of ``doc`` to ``metadata``; its files."""
    if doc.author != Author():
        has_more = doc.author.email or doc.author.website
        metadata["author"] = asdict(doc.author) if has_more else doc.author.name
    files: dict[str, bytes] = {}
    named = {"description_filename": doc.description, "citation_cff_filename": doc.citation_cff}
    for field, document in named.items():
        if document is not None:
            metadata[field] = document.filename
            files[document.filename] = document.text.encode()
    if doc.readme is not None:
        files[doc.readme.filename] = doc.readme.text.encode()
    return files


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()


def _source_json(source: InputSource, index: dict[str, int]) -> dict[str, Any]:
    data: dict[str, Any] = {"mode": source.mode}
    if source.mode == "fixed":
        data["fixed_value"] = source.fixed_value
    elif source.mode == "output":
        data["task"] = index[source.task or ""]
        data["key"] = source.key
    elif source.mode == "define_on_first" and source.template is not None:
        data["template"] = source.template
    return data


def _upstream_first(tasks: Sequence[ExportTask]) -> list[ExportTask]:
    """``tasks`` in their order, except that a task comes after the tasks it uses."""
    names = [task_name for task_name, _, _ in tasks]
    waiting = list(tasks)
    ordered: list[ExportTask] = []
    placed: set[str] = set()
    while waiting:
        ready = next((t for t in waiting if _upstream_names(t[2]) <= placed), None)
        if ready is None:
            stuck = ", ".join(shown(t[0]) for t in waiting)
            raise InvalidPackage(
                f"tasks {stuck} use outputs of tasks that are missing or use each other's "
                f"outputs in a cycle (tasks: {', '.join(names)}); fix their input sources",
                file=TASKS,
                field="tasks",
            )
        waiting.remove(ready)
        ordered.append(ready)
        placed.add(ready[0])
    return ordered


def _upstream_names(inputs: tuple[TaskInput, ...]) -> set[str]:
    return {i.source.task or "" for i in inputs if i.source.mode == "output"}
