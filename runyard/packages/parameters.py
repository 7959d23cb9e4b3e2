"""Parameter types and input modes, and checking a value against a parameter."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime, time
from typing import Any
from uuid import UUID

from runyard.models import Parameter
from runyard.packages.documents import shown

PRIMITIVE_TYPES = ("Int", "Float", "String", "Bool")
# The types of XamFlow's dependency package Core.Type.Base. Their values are JSON objects:
# composite values (an Entity, a chart report) as they are, bulk data as a file reference
# ({"type", "source": "filestore", "file_id", "filename", "size", "sha256"} or a User Data path).
COMPOSITE_TYPES = (
    "Bitmap",
    "ChartReport",
    "ChartReportConfig",
    "Contours",
    "CSV",
    "Entity",
    "Folder",
    "ForeignFile",
    "GIResult",
    "HTMLDocument",
    "Image",
    "ImagePairList",
    "ImageVOI",
    "Mesh",
)
BASE_TYPES = (*PRIMITIVE_TYPES, *COMPOSITE_TYPES)
PARAMETER_TYPES = (*BASE_TYPES, *(f"List[{t}]" for t in BASE_TYPES))
NUMBER_TYPES = ("Int", "Float")
INPUT_MODES = ("none", "fixed", "output", "define_on_first", "ui")
CONSTRAINT_KEYS = ("minimum", "maximum", "multipleOf", "enum", "format")

_TYPE_WORDS = {
    "Int": "a whole number",
    "Float": "a number",
    "String": "a string",
    "Bool": "true or false",
}


def base_type(type_name: str) -> str:
    """``List[Int]`` -> ``Int``; a base type stays itself."""
    if type_name.startswith("List[") and type_name.endswith("]"):
        return type_name[5:-1]
    return type_name


def is_list_type(type_name: str) -> bool:
    return base_type(type_name) != type_name


def connects(output_type: str, input_type: str, kind: str) -> bool:
    """Whether an output of ``output_type`` may feed an input of ``input_type`` of a task of
    ``kind``: the same type, or for a reduce task a list of it (one value per run)."""
    return output_type == input_type or (
        kind == "reduce" and is_list_type(input_type) and base_type(input_type) == output_type
    )


def supported_modes(param: Parameter) -> tuple[str, ...]:
    """The modes an input allows; an empty tuple (not stated) allows every mode."""
    return param.supported_modes or INPUT_MODES


def check_value(param: Parameter, value: Any) -> str | None:
    """What is wrong with ``value`` for ``param`` (type and constraints), or None."""
    if is_list_type(param.type):
        if not isinstance(value, list):
            return f"must be a list ({param.type}); found {shown(value)}"
        for index, item in enumerate(value):
            problem = check_item(base_type(param.type), param.constraints, item)
            if problem:
                return f"item {index} {problem}"
        return None
    return check_item(param.type, param.constraints, value)


def check_item(type_name: str, constraints: Mapping[str, Any], value: Any) -> str | None:
    """What is wrong with ``value`` for the base type ``type_name`` and ``constraints``."""
    if not _has_type(type_name, value):
        words = _TYPE_WORDS.get(type_name, "an object or null")
        return f"must be {words} ({type_name}); found {shown(value)}"
    enum = constraints.get("enum")
    if isinstance(enum, list) and not any(_same(value, choice) for choice in enum):
        return f"must be one of {', '.join(shown(c) for c in enum)}; found {shown(value)}"
    if _is_number(value):
        return _number_problem(constraints, value)
    if isinstance(value, str) and isinstance(constraints.get("format"), str):
        return _format_problem(constraints["format"], value)
    return None


def _format_problem(name: str, value: str) -> str | None:
    """What is wrong with ``value`` for the string format ``name`` (formats Runyard does not
    know are not checked)."""
    check = FORMATS.get(name)
    if check is None or check(value):
        return None
    return f"must be a {name} ({FORMAT_EXAMPLES[name]}); found {shown(value)}"


def _parses(parse: Callable[[str], object]) -> Callable[[str], bool]:
    def check(value: str) -> bool:
        try:
            parse(value)
        except ValueError:
            return False
        return True

    return check


FORMATS: dict[str, Callable[[str], bool]] = {
    "date": _parses(date.fromisoformat),
    "date-time": _parses(datetime.fromisoformat),
    "time": _parses(time.fromisoformat),
    "uuid": _parses(UUID),
    "email": lambda v: re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", v) is not None,
    "uri": lambda v: re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]+", v) is not None,
}
FORMAT_EXAMPLES = {
    "date": "like 2026-11-26",
    "date-time": "like 2026-11-26T14:30:00",
    "time": "like 14:30:00",
    "uuid": "like 1b4e28ba-2fa1-11d2-883f-0016d3cca427",
    "email": "like name@lab.org",
    "uri": "like https://lab.org/scan",
}


def _has_type(type_name: str, value: Any) -> bool:
    if type_name == "Int":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "Float":
        return _is_number(value)
    if type_name == "String":
        return isinstance(value, str)
    if type_name == "Bool":
        return isinstance(value, bool)
    return value is None or isinstance(value, dict)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


def _number_problem(constraints: Mapping[str, Any], value: float) -> str | None:
    minimum = _number(constraints, "minimum")
    if minimum is not None and value < minimum:
        return f"must be at least {shown(minimum)}; found {shown(value)}"
    maximum = _number(constraints, "maximum")
    if maximum is not None and value > maximum:
        return f"must be at most {shown(maximum)}; found {shown(value)}"
    step = _number(constraints, "multipleOf")
    if step is not None and step > 0 and not _is_multiple(value, step):
        return f"must be a multiple of {shown(step)}; found {shown(value)}"
    return None


def _number(constraints: Mapping[str, Any], name: str) -> float | None:
    value = constraints.get(name)
    return value if _is_number(value) else None


def _is_multiple(value: float, step: float) -> bool:
    if isinstance(value, int) and isinstance(step, int):
        return value % step == 0
    quotient = value / step
    return math.isclose(quotient, round(quotient), rel_tol=1e-9, abs_tol=1e-9)
