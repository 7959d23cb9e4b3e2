"""Workflow packages (``XFP-WF1.0``): ``metadata.json`` and ``tasks.json``, and Runyard's
optional ``layout.json`` (where the workflow graph draws each task; other tools ignore it).

In ``tasks.json`` an ``output`` source names an earlier task by its index; in the records
(:class:`WorkflowTaskSpec`) it carries that task's name, as :class:`InputSource` does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from runyard.errors import InvalidPackage
from runyard.models import Dependency, InputSource, Parameter, TaskInput, TaskType
from runyard.packages import schemas
from runyard.packages.documentation import Documentation, author_of, documentation_of
from runyard.packages.documents import read_json, shown, validate
from runyard.packages.metadata import dependencies, read_metadata
from runyard.packages.parameters import check_value, connects, supported_modes
from runyard.states import find_cycle

TASKS = "tasks.json"
LAYOUT = "layout.json"
FindTaskType = Callable[[str, str | None], TaskType | None]


@dataclass(frozen=True, kw_only=True)
class WorkflowTaskSpec:
    """One task of a workflow package; ``task_type_version`` None means the newest installed."""

    name: str
    task_type_name: str
    task_type_version: str | None = None
    inputs: tuple[TaskInput, ...] = ()


@dataclass(frozen=True, kw_only=True)
class WorkflowPackage:
    name: str
    version: str
    display_name: str = ""
    summary: str = ""
    author: str = ""
    remarks: str = ""
    tasks: tuple[WorkflowTaskSpec, ...] = ()
    dependencies: tuple[Dependency, ...] = ()
    documentation: Documentation = field(default_factory=Documentation)
    # {"positions": {task name: {"x", "y"}}} from layout.json; None without one.
    layout: dict[str, Any] | None = None


def parse_workflow(files: Mapping[str, bytes]) -> WorkflowPackage:
    metadata = read_metadata(files, schemas.WORKFLOW_METADATA)
    data = read_json(files, TASKS, what="a workflow package needs a tasks.json listing its tasks")
    validate(data, schemas.TASKS, TASKS)
    tasks: list[WorkflowTaskSpec] = []
    for index, item in enumerate(data["tasks"]):
        tasks.append(_task_spec(index, item, tasks))
    return WorkflowPackage(
        name=metadata["name"],
        version=metadata["version"],
        display_name=metadata.get("display_name", ""),
        summary=metadata.get("summary", ""),
        author=str(author_of(metadata)),
        remarks=metadata.get("remarks", ""),
        tasks=tuple(tasks),
        dependencies=dependencies(metadata),
        documentation=documentation_of(metadata, files),
        layout=_layout(files, tasks),
    )


def _layout(files: Mapping[str, bytes], tasks: list[WorkflowTaskSpec]) -> dict[str, Any] | None:
    """The package's layout.json, checked: every position names one of its tasks."""
    if LAYOUT not in files:
        return None
    data = read_json(files, LAYOUT, what="")
    validate(data, schemas.LAYOUT, LAYOUT)
    names = {t.name for t in tasks}
    for name in data["positions"]:
        if name not in names:
            raise InvalidPackage(
                f"names no task of the package ({', '.join(sorted(names)) or 'none'}); "
                "remove it or rename it as in tasks.json",
                file=LAYOUT,
                field=f"positions.{name}",
            )
    return {"positions": data["positions"]}


def _task_spec(
    index: int, item: dict[str, Any], earlier: list[WorkflowTaskSpec]
) -> WorkflowTaskSpec:
    field = f"tasks[{index}]"
    for other, spec in enumerate(earlier):
        if spec.name == item["name"]:
            raise InvalidPackage(
                f"{shown(item['name'])} is also the name of tasks[{other}]; "
                "give each task its own name",
                file=TASKS,
                field=f"{field}.name",
            )
    inputs: list[TaskInput] = []
    for number, entry in enumerate(item.get("inputs", ())):
        where = f"{field}.inputs[{number}]"
        if any(i.key == entry["key"] for i in inputs):
            raise InvalidPackage(
                f"{shown(entry['key'])} is listed twice for this task; give each input one source",
                file=TASKS,
                field=f"{where}.key",
            )
        inputs.append(TaskInput(key=entry["key"], source=_source(entry["source"], where, earlier)))
    return WorkflowTaskSpec(
        name=item["name"],
        task_type_name=item["task_type"]["name"],
        task_type_version=item["task_type"].get("version"),
        inputs=tuple(inputs),
    )


def _source(data: dict[str, Any], where: str, earlier: list[WorkflowTaskSpec]) -> InputSource:
    upstream: str | None = None
    if data["mode"] == "output":
        task = data["task"]
        if task >= len(earlier):
            allowed = f"0 to {len(earlier) - 1}" if earlier else "none: this is the first task"
            raise InvalidPackage(
                f"is {task}, but an output source must name an earlier task by its index "
                f"({allowed}); put the upstream task before this one",
                file=TASKS,
                field=f"{where}.source.task",
            )
        upstream = earlier[task].name
    return InputSource(
        mode=data["mode"],
        fixed_value=data.get("fixed_value"),
        task=upstream,
        key=data.get("key"),
        template=data.get("template"),
    )


# -- resolving against the installed task types ---------------------------------------------


def resolve_workflow(
    pkg: WorkflowPackage, find_task_type: FindTaskType
) -> list[tuple[WorkflowTaskSpec, TaskType]]:
    """Each task with its installed task type, checked against that type's interface.

    ``find_task_type(name, version)`` returns that version, or the newest for None. The specs
    returned name the version found and list a source for every input of the interface, in
    interface order: an input the package leaves out gets its default as a fixed value, or
    mode ``none`` when it has no default.
    """
    task_types: dict[str, TaskType] = {}
    positions: dict[str, int] = {}
    for index, spec in enumerate(pkg.tasks):
        if spec.name in positions:
            raise InvalidPackage(
                f"{shown(spec.name)} is used by two tasks; give each task its own name",
                file=TASKS,
                field=f"tasks[{index}].name",
            )
        task_types[spec.name] = _installed(spec, index, find_task_type)
        positions[spec.name] = index
    _check_graph(pkg, positions)
    return [
        (_resolved(index, spec, task_types), task_types[spec.name])
        for index, spec in enumerate(pkg.tasks)
    ]


def _installed(spec: WorkflowTaskSpec, index: int, find_task_type: FindTaskType) -> TaskType:
    task_type = find_task_type(spec.task_type_name, spec.task_type_version)
    if task_type is None:
        which = f"version {spec.task_type_version}" if spec.task_type_version else "any version"
        raise InvalidPackage(
            f"task type {shown(spec.task_type_name)} ({which}) is not installed; "
            "import its task type package first",
            file=TASKS,
            field=f"tasks[{index}].task_type",
        )
    return task_type


def _check_graph(pkg: WorkflowPackage, positions: dict[str, int]) -> None:
    edges: dict[str, list[str]] = {}
    for index, spec in enumerate(pkg.tasks):
        edges[spec.name] = []
        for number, task_input in enumerate(spec.inputs):
            upstream = task_input.source.task
            if task_input.source.mode != "output":
                continue
            if upstream not in positions:
                raise InvalidPackage(
                    f"names task {shown(upstream)}, which is not in the workflow; "
                    "connect the input to a task of this workflow",
                    file=TASKS,
                    field=f"tasks[{index}].inputs[{number}].source.task",
                )
            edges[spec.name].append(upstream)
    cycle = find_cycle(edges)
    if cycle:
        raise InvalidPackage(
            f"the tasks use each other's outputs in a cycle ({' -> '.join(cycle)}); "
            "remove one of these connections",
            file=TASKS,
            field=f"tasks[{positions[cycle[0]]}].inputs",
        )


def _resolved(
    index: int, spec: WorkflowTaskSpec, task_types: dict[str, TaskType]
) -> WorkflowTaskSpec:
    task_type = task_types[spec.name]
    listed: dict[str, TaskInput] = {}
    for number, task_input in enumerate(spec.inputs):
        where = f"tasks[{index}].inputs[{number}]"
        param = task_type.interface.input(task_input.key)
        if param is None:
            keys = ", ".join(p.key for p in task_type.interface.inputs) or "none"
            raise InvalidPackage(
                f"task type {task_type.name} {task_type.version} has no input "
                f"{shown(task_input.key)}; use one of its inputs ({keys})",
                file=TASKS,
                field=f"{where}.key",
            )
        _check_source(where, param, task_input.source, task_type, task_types)
        listed[param.key] = task_input
    inputs = tuple(
        listed.get(p.key) or TaskInput(key=p.key, source=_default_source(p))
        for p in task_type.interface.inputs
    )
    return WorkflowTaskSpec(
        name=spec.name,
        task_type_name=task_type.name,
        task_type_version=task_type.version,
        inputs=inputs,
    )


def _default_source(param: Parameter) -> InputSource:
    if param.default is None:
        return InputSource(mode="none")
    return InputSource(mode="fixed", fixed_value=param.default)


def _check_source(
    where: str,
    param: Parameter,
    source: InputSource,
    task_type: TaskType,
    task_types: dict[str, TaskType],
) -> None:
    modes = supported_modes(param)
    if source.mode not in modes:
        raise InvalidPackage(
            f"is {shown(source.mode)}, which input {shown(param.key)} of task type "
            f"{task_type.name} does not support; use one of {', '.join(modes)}",
            file=TASKS,
            field=f"{where}.source.mode",
        )
    if source.mode == "fixed":
        problem = check_value(param, source.fixed_value)
        if problem:
            raise InvalidPackage(
                f"{problem}; give a value that fits input {shown(param.key)}",
                file=TASKS,
                field=f"{where}.source.fixed_value",
            )
    if source.mode == "output" and source.task is not None:
        _check_connection(where, param, source, task_type, task_types[source.task])


def _check_connection(
    where: str, param: Parameter, source: InputSource, task_type: TaskType, upstream: TaskType
) -> None:
    output = upstream.interface.output(source.key or "")
    if output is None:
        keys = ", ".join(p.key for p in upstream.interface.outputs) or "none"
        raise InvalidPackage(
            f"task {shown(source.task)} (task type {upstream.name}) has no output "
            f"{shown(source.key)}; use one of its outputs ({keys})",
            file=TASKS,
            field=f"{where}.source.key",
        )
    if not connects(output.type, param.type, task_type.interface.kind):
        raise InvalidPackage(
            f"output {shown(output.key)} of task {shown(source.task)} is {output.type}, but "
            f"input {shown(param.key)} needs {param.type}; connect an output of type "
            f"{param.type}",
            file=TASKS,
            field=f"{where}.source.key",
        )
