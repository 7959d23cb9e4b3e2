"""JSON schemas (Draft 2020-12) of the package files: the structural checks.

``x-must`` is our own annotation: what a value must be, in words, for the error message.
Checks that need more than one field (unique keys, defaults, references) are in Python.
"""

from __future__ import annotations

from typing import Any

from runyard.packages.parameters import BASE_TYPES, INPUT_MODES, PARAMETER_TYPES

Schema = dict[str, Any]

TASK_TYPE_FORMAT = "XFP-TT1.0"
WORKFLOW_FORMAT = "XFP-WF1.0"
DEPENDENCY_FORMAT = "XFP-DEP1.0"
FORMATS = {
    TASK_TYPE_FORMAT: "task type",
    WORKFLOW_FORMAT: "workflow",
    DEPENDENCY_FORMAT: "dependency package",
}

VERSION: Schema = {
    "type": "string",
    "pattern": r"^(0|[1-9][0-9]{0,9})(\.(0|[1-9][0-9]{0,9})){3}$",
    "x-must": 'four whole numbers separated by dots, like "1.2.0.0" (no leading zeros)',
}
TASK_TYPE_NAME: Schema = {
    "type": "string",
    "pattern": r"^(?!\.+$)[A-Za-z0-9.]{1,50}$",  # not "." nor "..": it names a folder
    "x-must": '1 to 50 letters, digits and dots (not only dots), like "Lucid.Util.Threshold"',
}
DEPENDENCY_NAME: Schema = {
    "type": "string",
    "pattern": r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$",
    "x-must": '1 to 100 letters, digits, dots, dashes and underscores, like "numpy"',
}
_PLAIN_NAME = r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$"
WORKFLOW_NAME: Schema = {
    "type": "string",
    "pattern": _PLAIN_NAME,
    "maxLength": 200,
    "x-must": "a name of 1 to 200 characters without control characters (tabs, line breaks)",
}
KEY: Schema = {
    "type": "string",
    "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$",
    "x-must": "an identifier: letters, digits and underscores, not starting with a digit",
}
TEXT: Schema = {"type": "string"}
DISPLAY_NAME: Schema = {
    "type": "string",
    "maxLength": 50,
    "not": {"pattern": r"[\r\n]"},
    "x-must": "one line of at most 50 characters",
}
FILE_NAME: Schema = {
    "type": "string",
    "minLength": 1,
    "x-must": "the path of a file in the package",
}
AUTHOR: Schema = {
    "type": ["string", "object"],
    "additionalProperties": False,
    "properties": {"name": TEXT, "email": TEXT, "website": TEXT},
}

_DEPENDENCY: Schema = {
    "type": "object",
    "required": ["name", "version"],
    "additionalProperties": False,
    "properties": {"name": DEPENDENCY_NAME, "version": VERSION},
}


def _metadata(package_format: str, name: Schema, **extra: Schema) -> Schema:
    return {
        "type": "object",
        "required": ["package_format", "name", "version"],
        "additionalProperties": False,
        "properties": {
            "package_format": {"const": package_format},
            "name": name,
            "version": VERSION,
            "display_name": DISPLAY_NAME,
            "summary": TEXT,
            "description_filename": FILE_NAME,
            "citation_cff_filename": FILE_NAME,
            "remarks": TEXT,
            "author": AUTHOR,
            "dependencies": {"type": "array", "items": _DEPENDENCY},
            **extra,
        },
    }


PACKAGE_FORMAT: Schema = {
    "type": "object",
    "required": ["package_format"],
    "properties": {
        "package_format": {
            "type": "string",
            "enum": list(FORMATS),
            "x-must": "one of " + ", ".join(f"{f} ({what})" for f, what in FORMATS.items()),
        },
    },
}

TASK_TYPE_METADATA = _metadata(
    TASK_TYPE_FORMAT,
    TASK_TYPE_NAME,
    entry_point={"type": "string", "minLength": 1},
    timeout_seconds={"type": "number", "exclusiveMinimum": 0},
    jobs_per_process={
        "type": "integer",
        "minimum": 1,
        "x-must": "a whole number of at least 1 (1: a new process for every job)",
    },
    retries={
        "type": "integer",
        "minimum": 0,
        "maximum": 100,
        "x-must": "a whole number from 0 to 100 (how many times a failed job is retried)",
    },
    resources={
        "type": "object",
        "additionalProperties": False,
        "x-must": 'an object of "cpus", "memory" and "partition" (each optional)',
        "properties": {
            "cpus": {
                "type": "integer",
                "minimum": 1,
                "maximum": 100_000,
                "x-must": "a whole number of CPUs, at least 1",
            },
            "memory": {
                "type": "string",
                "pattern": "^[1-9][0-9]{0,8}[KMGT]?$",
                "x-must": "an amount as sbatch --mem takes it: 500M, 4G (megabytes without unit)",
            },
            "partition": {
                "type": "string",
                "pattern": "^[A-Za-z0-9_.-]{1,64}$",
                "x-must": "a partition's name (letters, digits, _ . -)",
            },
        },
    },
)
# A dependency package without ``install`` is a "virtual marker": it only flags workers that
# have some software already.
DEPENDENCY_METADATA = _metadata(
    DEPENDENCY_FORMAT,
    DEPENDENCY_NAME,
    install={
        "type": "string",
        "pattern": r"\S",
        "x-must": 'a command like "%xfpip% install numpy"',
    },
)
WORKFLOW_METADATA = _metadata(WORKFLOW_FORMAT, WORKFLOW_NAME)

_TYPE: Schema = {
    "type": "string",
    "enum": list(PARAMETER_TYPES),
    "x-must": f"a parameter type ({', '.join(BASE_TYPES)}) or a list of one, written like "
    "List[Int]",
}
_INPUT: Schema = {
    "type": "object",
    "required": ["key", "type"],
    "additionalProperties": False,
    "properties": {
        "key": KEY,
        "type": _TYPE,
        "supported_modes": {
            "type": "array",
            "items": {"type": "string", "enum": list(INPUT_MODES)},
            "minItems": 1,
            "uniqueItems": True,
        },
        "default": {},
        "minimum": {"type": "number"},
        "maximum": {"type": "number"},
        "multipleOf": {"type": "number", "exclusiveMinimum": 0},
        "enum": {"type": "array", "minItems": 1},
        "format": TEXT,
        "description": TEXT,
    },
}
_OUTPUT: Schema = {
    "type": "object",
    "required": ["key", "type"],
    "additionalProperties": False,
    "properties": {"key": KEY, "type": _TYPE, "description": TEXT},
}
# Without ``kind`` (as in some of XamFlow's examples) a task type is a processing task.
INTERFACE: Schema = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "kind": {"type": "string", "enum": ["processing", "interactive", "reduce"]},
        "inputs": {"type": "array", "items": _INPUT},
        "outputs": {"type": "array", "items": _OUTPUT},
    },
}


def _mode(mode: str, required: tuple[str, ...] = (), **fields: Schema) -> Schema:
    """The fields an input source of ``mode`` has (and no others)."""
    return {
        "if": {"required": ["mode"], "properties": {"mode": {"const": mode}}},
        "then": {
            "required": list(required),
            "additionalProperties": False,
            "properties": {"mode": {}, **fields},
        },
    }


_SOURCE: Schema = {
    "type": "object",
    "required": ["mode"],
    "properties": {"mode": {"type": "string", "enum": list(INPUT_MODES)}},
    "allOf": [
        _mode("none"),
        _mode("fixed", ("fixed_value",), fixed_value={}),
        _mode(
            "output",
            ("task", "key"),
            task={"type": "integer", "minimum": 0},
            key=KEY,
        ),
        _mode("define_on_first", template={}),
        _mode("ui"),
    ],
}
_TASK: Schema = {
    "type": "object",
    "required": ["name", "task_type"],
    "additionalProperties": False,
    "properties": {
        "name": WORKFLOW_NAME,
        "task_type": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": False,
            "properties": {"name": TASK_TYPE_NAME, "version": VERSION},
        },
        "inputs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "source"],
                "additionalProperties": False,
                "properties": {"key": KEY, "source": _SOURCE},
            },
        },
    },
}
TASKS: Schema = {
    "type": "object",
    "required": ["tasks"],
    "additionalProperties": False,
    "properties": {"tasks": {"type": "array", "items": _TASK}},
}

# layout.json (Runyard's, optional): where the workflow graph draws each task, by task name.
LAYOUT: Schema = {
    "type": "object",
    "required": ["positions"],
    "additionalProperties": False,
    "properties": {
        "positions": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["x", "y"],
                "additionalProperties": False,
                "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
            },
        }
    },
}

ALL = (
    PACKAGE_FORMAT,
    TASK_TYPE_METADATA,
    DEPENDENCY_METADATA,
    WORKFLOW_METADATA,
    INTERFACE,
    TASKS,
    LAYOUT,
)
