"""Checks of values against a task type's interface, shared by the engine and the API."""

from __future__ import annotations

from typing import Any

from runyard.models import TaskType
from runyard.packages import check_value


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
