"""Checks of values against a task type's interface, shared by the engine and the API."""

from __future__ import annotations

from typing import Any

from runyard.errors import InvalidInput
from runyard.models import InputSource, Parameter, Task, TaskInput, TaskType
from runyard.packages import check_value
from runyard.packages.parameters import connects, supported_modes


def check_outputs(task_type: TaskType, outputs: dict[str, Any]) -> str | None:
    """What is wrong with ``outputs`` of a job of ``task_type``, or None."""
    if not isinstance(outputs, dict):
        return "outputs must be a JSON object of output key -> value"
    known = {p.key: p for p in task_type.interface.outputs}
    for key, value in outputs.items():
        param = known.get(key)
        if param is None:
            return (
                f"output {key!r} is not in the interface of {task_type.name} {task_type.version}"
                f"; its outputs: {', '.join(known) or '(none)'}"
            )
        problem = check_value(param, value)
        if problem:
            return f"output {key!r}: {problem}"
    return None


def spawned_task_inputs(
    task_type: TaskType, entries: list[dict[str, Any]], tasks: list[Task]
) -> tuple[TaskInput, ...]:
    """The input sources of a task to spawn, checked as a workflow package's are: each key an
    input of ``task_type``, each mode one the input supports, fixed values that fit, output
    sources naming a task of the workflow (``tasks``) by name or id and an output of it of
    the input's type. Inputs left out get their default (fixed) or mode ``none``."""
    by_name = {t.name: t for t in tasks}
    by_id = {t.id: t for t in tasks}
    listed: dict[str, TaskInput] = {}
    for number, entry in enumerate(entries):
        where = f"inputs[{number}]"
        key, source = entry.get("key"), entry.get("source")
        param = task_type.interface.input(str(key))
        if param is None:
            keys = ", ".join(p.key for p in task_type.interface.inputs) or "none"
            raise InvalidInput(
                f"{where}: task type {task_type.name} {task_type.version} has no input {key!r}; "
                f"its inputs: {keys}",
                field=f"{where}.key",
            )
        if param.key in listed:
            raise InvalidInput(f"{where}: input {key!r} is listed twice", field=f"{where}.key")
        if not isinstance(source, dict):
            raise InvalidInput(f"{where}: source must be an object like {{'mode': 'none'}}")
        listed[param.key] = TaskInput(
            key=param.key,
            source=_checked_source(where, param, source, by_name, by_id, task_type.interface.kind),
        )
    return tuple(
        listed.get(p.key)
        or TaskInput(
            key=p.key,
            source=InputSource(mode="none")
            if p.default is None
            else InputSource(mode="fixed", fixed_value=p.default),
        )
        for p in task_type.interface.inputs
    )


def _checked_source(
    where: str,
    param: Parameter,
    source: dict[str, Any],
    by_name: dict[str, Task],
    by_id: dict[int, Task],
    kind: str,
) -> InputSource:
    mode = source.get("mode")
    modes = supported_modes(param)
    if mode not in modes:
        raise InvalidInput(
            f"{where}: mode {mode!r} is not one that input {param.key!r} supports; use one of "
            f"{', '.join(modes)}",
            field=f"{where}.source.mode",
        )
    if mode == "fixed":
        problem = check_value(param, source.get("fixed_value"))
        if problem:
            raise InvalidInput(f"{where}: fixed value {problem}", field=f"{where}.source")
    upstream_name = None
    if mode == "output":
        named = source.get("task")
        upstream = (
            by_id.get(named)
            if isinstance(named, int) and not isinstance(named, bool)
            else by_name.get(str(named))
        )
        if upstream is None:
            raise InvalidInput(
                f"{where}: the output source names task {named!r}, which is not in this "
                "workflow; name a task of the workflow by its name or id",
                field=f"{where}.source.task",
            )
        output = upstream.task_type.interface.output(str(source.get("key")))
        if output is None or not connects(output.type, param.type, kind):
            outputs = ", ".join(f"{o.key} ({o.type})" for o in upstream.task_type.interface.outputs)
            raise InvalidInput(
                f"{where}: input {param.key!r} needs an output of type {param.type} of task "
                f"{upstream.name!r}; its outputs: {outputs or 'none'}",
                field=f"{where}.source.key",
            )
        upstream_name = upstream.name
    return InputSource(
        mode=str(mode),
        fixed_value=source.get("fixed_value"),
        task=upstream_name,
        key=source.get("key") if mode == "output" else None,
        template=source.get("template"),
    )


def check_job_inputs(task_type: TaskType, inputs: dict[str, Any]) -> str | None:
    """What is wrong with the ``inputs`` given to a spawned job of ``task_type``, or None
    (null is allowed for every input: a ``none`` source)."""
    if not isinstance(inputs, dict):
        return "inputs must be a JSON object of input key -> value"
    for key, value in inputs.items():
        param = task_type.interface.input(key)
        if param is None:
            known = ", ".join(p.key for p in task_type.interface.inputs) or "(none)"
            return (
                f"input {key!r} is not in the interface of {task_type.name} "
                f"{task_type.version}; its inputs: {known}"
            )
        problem = None if value is None else check_value(param, value)
        if problem:
            return f"input {key!r}: {problem}"
    return None
