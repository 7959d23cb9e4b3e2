"""Task type packages (``XFP-TT1.0``): ``metadata.json``, ``interface.json`` and the script(s)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runyard.errors import InvalidPackage
from runyard.models import Interface, Parameter, TaskType
from runyard.packages import schemas
from runyard.packages.archive import path_problem
from runyard.packages.documentation import Documentation, author_of, documentation_of
from runyard.packages.documents import read_json, shown, validate
from runyard.packages.metadata import METADATA, dependencies, read_metadata
from runyard.packages.parameters import (
    CONSTRAINT_KEYS,
    INPUT_MODES,
    NUMBER_TYPES,
    base_type,
    check_item,
    check_value,
)

INTERFACE = "interface.json"
DEFAULT_ENTRY_POINT = "main.py"


@dataclass(frozen=True, kw_only=True)
class TaskTypePackage:
    """A task type (not yet installed: ``id`` 0, no ``path``) and all files of its package."""

    task_type: TaskType
    files: Mapping[str, bytes]
    documentation: Documentation = field(default_factory=Documentation)


def parse_task_type(files: Mapping[str, bytes]) -> TaskTypePackage:
    metadata = read_metadata(files, schemas.TASK_TYPE_METADATA)
    entry_point = _entry_point(metadata, files)
    documentation = documentation_of(metadata, files)
    interface = read_json(
        files, INTERFACE, what="a task type package needs an interface.json next to metadata.json"
    )
    validate(interface, schemas.INTERFACE, INTERFACE)
    timeout = metadata.get("timeout_seconds")
    task_type = TaskType(
        name=metadata["name"],
        version=metadata["version"],
        display_name=metadata.get("display_name", ""),
        summary=metadata.get("summary", ""),
        author=str(author_of(metadata)),
        entry_point=entry_point,
        timeout_seconds=None if timeout is None else float(timeout),
        jobs_per_process=metadata.get("jobs_per_process", 1),
        retries=metadata.get("retries", 0),
        resources=metadata.get("resources", {}),
        dependencies=dependencies(metadata),
        interface=interface_from_json(interface),
    )
    return TaskTypePackage(task_type=task_type, files=files, documentation=documentation)


def _entry_point(metadata: dict[str, Any], files: Mapping[str, bytes]) -> str:
    entry_point: str = metadata.get("entry_point", DEFAULT_ENTRY_POINT)
    problem = path_problem(entry_point)
    if problem:
        raise InvalidPackage(
            f'{problem}; give the script\'s path relative to the package, like "main.py"',
            file=METADATA,
            field="entry_point",
        )
    if entry_point not in files:
        stated = "" if "entry_point" in metadata else " (the default)"
        raise InvalidPackage(
            f"is {shown(entry_point)}{stated}, which is not in the package; add the script or "
            "set entry_point to the script's path",
            file=METADATA,
            field="entry_point",
        )
    return entry_point


def interface_from_json(data: dict[str, Any]) -> Interface:
    """The interface of checked (schema-valid) ``interface.json`` data, after semantic checks."""
    inputs = _parameters(data.get("inputs", ()), "inputs")
    outputs = _parameters(data.get("outputs", ()), "outputs")
    for index, param in enumerate(inputs):
        _check_input(param, f"inputs[{index}]")
    return Interface(kind=data.get("kind", "processing"), inputs=inputs, outputs=outputs)


def _parameters(items: Sequence[dict[str, Any]], section: str) -> tuple[Parameter, ...]:
    params: list[Parameter] = []
    for index, item in enumerate(items):
        if any(p.key == item["key"] for p in params):
            raise InvalidPackage(
                f"{shown(item['key'])} is used by two {section}; give each one its own key",
                file=INTERFACE,
                field=f"{section}[{index}].key",
            )
        params.append(
            Parameter(
                key=item["key"],
                type=item["type"],
                supported_modes=(
                    tuple(item.get("supported_modes", INPUT_MODES)) if section == "inputs" else ()
                ),
                default=item.get("default"),
                description=item.get("description", ""),
                constraints={k: item[k] for k in CONSTRAINT_KEYS if k in item},
            )
        )
    return tuple(params)


def _check_input(param: Parameter, field: str) -> None:
    """Constraints that fit the type, and a default that fits the constraints."""
    constraints = param.constraints
    base = base_type(param.type)
    for name in ("minimum", "maximum", "multipleOf"):
        if name in constraints and base not in NUMBER_TYPES:
            raise InvalidPackage(
                f"applies only to Int and Float inputs, and this input is {param.type}; "
                f"remove {name} or change the type",
                file=INTERFACE,
                field=f"{field}.{name}",
            )
    if constraints.get("minimum", -float("inf")) > constraints.get("maximum", float("inf")):
        raise InvalidPackage(
            f"is {shown(constraints['maximum'])}, less than the minimum "
            f"{shown(constraints['minimum'])}; make the minimum at most the maximum",
            file=INTERFACE,
            field=f"{field}.maximum",
        )
    for index, choice in enumerate(constraints.get("enum", ())):
        problem = check_item(base, {}, choice)
        if problem:
            raise InvalidPackage(
                f"{problem}; every choice must fit the input's type",
                file=INTERFACE,
                field=f"{field}.enum[{index}]",
            )
    if param.default is not None:
        problem = check_value(param, param.default)
        if problem:
            raise InvalidPackage(
                f"{problem}; change the default to fit the input's type and limits",
                file=INTERFACE,
                field=f"{field}.default",
            )
