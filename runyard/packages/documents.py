"""The JSON files of a package: strict parsing, and schema errors in words a user can act on.

Every problem becomes an :class:`InvalidPackage` naming the file, the field as a JSON path
(``inputs[2].type``) and what to do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from jsonschema import Draft202012Validator, validators  # type: ignore[import-untyped]

from runyard.errors import InvalidPackage

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_JSON_TYPE_WORDS = {
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
}


class _JsonProblem(ValueError):
    pass


def json_path(parts: Sequence[str | int]) -> str:
    """``["inputs", 2, "type"]`` -> ``inputs[2].type``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.match(part):
            out += f".{part}" if out else part
        else:
            out += f"[{json.dumps(part)}]"
    return out


def shown(value: Any, limit: int = 60) -> str:
    """A JSON value as a user wrote it, shortened for a message."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_json(files: Mapping[str, bytes], name: str, *, what: str) -> Any:
    """Parse the package file ``name`` (strict JSON in UTF-8); ``what`` says why it is needed."""
    data = files.get(name)
    if data is None:
        raise InvalidPackage(f"is missing; {what}", file=name)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise InvalidPackage(
            f"is not valid UTF-8 (line {line}, column {column}); save the file as UTF-8",
            file=name,
        ) from None
    try:
        return json.loads(
            text.removeprefix("\ufeff"),
            parse_constant=_refuse_constant,
            object_pairs_hook=_object_without_duplicates,
        )
    except json.JSONDecodeError as e:
        raise InvalidPackage(
            f"is not valid JSON: {e.msg} (line {e.lineno}, column {e.colno}); fix the syntax",
            file=name,
        ) from None
    except _JsonProblem as e:
        raise InvalidPackage(str(e), file=name) from None
    except RecursionError:
        raise InvalidPackage(
            "nests lists or objects too deeply to read; flatten the data", file=name
        ) from None


def _refuse_constant(name: str) -> Any:
    raise _JsonProblem(f"contains {name}, which JSON does not allow; write a number or null")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _JsonProblem(f"has the key {shown(key)} twice in one object; keep only one")
        result[key] = value
    return result


def _is_integer(checker: Any, instance: Any) -> bool:
    return isinstance(instance, int) and not isinstance(instance, bool)


# JSON integers are Python ints: 1.0 is not an index or a count.
_Validator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer),
)


def check_schema(schema: Mapping[str, Any]) -> None:
    """Raise if ``schema`` is not a valid Draft 2020-12 schema (for tests)."""
    Draft202012Validator.check_schema(schema)


def validate(instance: Any, schema: Mapping[str, Any], file: str) -> None:
    """Raise :class:`InvalidPackage` for the first problem, in document order."""
    errors = list(_Validator(schema).iter_errors(instance))
    if not errors:
        return
    error = min(errors, key=_document_order)
    parts, problem = _describe(error)
    raise InvalidPackage(problem, file=file, field=json_path(parts) or "(top level)")


def _document_order(error: Any) -> list[tuple[int, int, str]]:
    return [(0, p, "") if isinstance(p, int) else (1, 0, p) for p in error.absolute_path]


def _describe(error: Any) -> tuple[list[str | int], str]:
    """The JSON path and the problem in plain words for one jsonschema error."""
    path: list[str | int] = list(error.absolute_path)
    kind: str = error.validator
    value: Any = error.validator_value
    if kind == "required":
        missing = next(k for k in value if k not in error.instance)
        return [*path, missing], "is missing; add it"
    if kind == "additionalProperties":
        known = list(error.schema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in known)[0]
        return [*path, extra], (
            "is not a known field; remove it or correct its spelling "
            f"(known fields: {', '.join(known)})"
        )
    if kind == "type":
        wanted = " or ".join(
            _JSON_TYPE_WORDS[t] for t in ([value] if isinstance(value, str) else value)
        )
        return path, f"must be {wanted}, not {_json_type_word(error.instance)}"
    must = error.schema.get("x-must")
    if must:
        return path, f"must be {must}; found {shown(error.instance)}"
    return path, _bound_problem(kind, value, error.instance) or error.message


def _bound_problem(kind: str, value: Any, instance: Any) -> str | None:
    found = shown(instance)
    messages = {
        "enum": lambda: f"must be one of {', '.join(shown(v) for v in value)}; found {found}",
        "const": lambda: f"must be {shown(value)}; found {found}",
        "minLength": lambda: (
            "must not be empty" if value == 1 else f"must have at least {value} characters"
        ),
        "maxLength": lambda: f"must have at most {value} characters; shorten it",
        "minItems": lambda: f"must list at least {value} item(s)",
        "uniqueItems": lambda: f"must not list the same item twice; found {found}",
        "minimum": lambda: f"must be at least {value}; found {found}",
        "exclusiveMinimum": lambda: f"must be greater than {value}; found {found}",
    }
    message = messages.get(kind)
    return message() if message else None


def _json_type_word(instance: Any) -> str:
    if isinstance(instance, str):
        return f"the string {shown(instance)}"
    if isinstance(instance, list):
        return "a list"
    if isinstance(instance, dict):
        return "an object"
    return shown(instance)
