"""The study table: one task's scalar outputs (numbers, strings, booleans) for every live
run whose job of that task is Done, as rows, with the columns' names and types; and the same
as CSV. Read in one statement whatever the number of runs (store/study_table.py)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from runyard.errors import InvalidInput
from runyard.models import Task
from runyard.operations.base import Operations
from runyard.store import study_table as table_rows

# The output types a table cell shows; every other output (files, images, entities, lists)
# is left out of the table (its files can be downloaded as a zip).
CSV_CHUNK_ROWS = 2000
SCALAR_TYPES = ("Int", "Float", "String", "Bool")
SCALAR_PYTHON: dict[str, tuple[type, ...]] = {
    "Int": (int,),
    "Float": (int, float),
    "String": (str,),
    "Bool": (bool,),
}


def scalar_columns(task: Task) -> list[dict[str, str]]:
    """The task's scalar outputs: ``[{"key", "type"}]`` in interface order."""
    outputs = task.task_type.interface.outputs
    return [{"key": p.key, "type": p.type} for p in outputs if p.type in SCALAR_TYPES]


def file_columns(task: Task) -> list[dict[str, str]]:
    """The task's other outputs (those that may hold files): ``[{"key", "type"}]``."""
    outputs = task.task_type.interface.outputs
    return [{"key": p.key, "type": p.type} for p in outputs if p.type not in SCALAR_TYPES]


def per_run(task: Task) -> bool:
    return task.task_type.interface.kind != "reduce"


def cell(value: Any, type_name: str) -> Any:
    """A stored output value as the table shows it: null unless of the column's type (a
    boolean is no Int or Float)."""
    if isinstance(value, bool) and type_name != "Bool":
        return None
    return value if isinstance(value, SCALAR_PYTHON[type_name]) else None


class StudyTableManager(Operations):
    def table(self, name: str, task_name: str | None = None) -> dict[str, Any]:
        """The study table of ``task_name`` (None: the workflow's last per-run task with
        scalar outputs): ``columns`` (its scalar outputs), ``file_columns`` (its others) and
        one row per live run whose job of the task is Done, in run sort order; ``tasks``
        names the tasks a table can be shown for (those of the runs that have outputs)."""
        with self.store.read() as conn:
            workflow = self._workflow(conn, name)
            tasks = self._tasks(conn, workflow.id)
            shown = [t for t in tasks if per_run(t) and t.task_type.interface.outputs]
            task = self._chosen(tasks, shown, task_name, workflow)
            found = table_rows.done_outputs(conn, workflow.id, task.id) if task else []
        columns = scalar_columns(task) if task else []
        return {
            "workflow": workflow.name,
            "task": task.name if task else None,
            "tasks": [t.name for t in shown],
            "columns": columns,
            "file_columns": file_columns(task) if task else [],
            "rows": [
                {
                    "run_id": run_id,
                    "run": run_name,
                    "serial": serial,
                    "values": [cell(outputs.get(c["key"]), c["type"]) for c in columns],
                }
                for run_id, run_name, serial, outputs in found
            ],
        }

    def _chosen(
        self, tasks: list[Task], shown: list[Task], task_name: str | None, workflow: Any
    ) -> Task | None:
        if task_name is None:
            with_scalars = [t for t in shown if scalar_columns(t)] or shown
            return with_scalars[-1] if with_scalars else None
        task = self._task(tasks, task_name, workflow)
        if not per_run(task):
            raise InvalidInput(
                f"task {task_name!r} is a reduce task: it has one job for the whole workflow, "
                "not one per run; choose a task of the runs"
                + (f" ({', '.join(t.name for t in shown)})" if shown else ""),
                task=task_name,
            )
        return task


def csv_chunks(table: dict[str, Any]) -> Iterator[str]:
    """A study table (``StudyTableManager.table``) as CSV text, in chunks of rows: a
    header row (run_id, run, then the columns' keys), then one row per run; quoted as
    RFC 4180 needs, booleans as true/false, a missing value empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["run_id", "run", *(c["key"] for c in table["columns"])])
    for i, row in enumerate(table["rows"], 1):
        writer.writerow([row["run_id"], row["run"], *map(_csv_value, row["values"])])
        if i % CSV_CHUNK_ROWS == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
