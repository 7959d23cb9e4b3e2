"""Spawning for task scripts: a running job creates tasks, runs and jobs in its workflow.

    from runyard.task import spawn

    [select_type, *_] = spawn.find_task_types("XF.Data.SelectForeignFile")
    task = spawn.spawn_task(select_type, "Found files", spawn_key="files")
    orders = spawn.new_sort_orders(len(files))
    jobs = spawn.spawn_jobs(
        [
            {"task": task["id"], "outputs": {"foreign_file": value}, "sort_order": order,
             "metadata": {"run_display_name": name}}
            for (name, value), order in zip(files, orders)
        ]
    )

``spawn_task`` answers the task that this job's task spawned before with the same
``spawn_key`` (default: its name), so re-running a search adds no second column.
``spawn_jobs`` sends jobs in batches of ``BATCH`` (one transaction each); a job without
``source_job_serial`` starts a new run. A job already spawned by this job with the same task,
outputs, inputs, metadata (the entity's uuid aside) and run is answered as it is: a job
retried after a crash gets its runs and jobs back, none twice. ``JobBatch`` collects jobs
and sends them when needed (the XamFlow facade uses it). See docs/spawning.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import runyard.task as _task

if TYPE_CHECKING:
    from runyard.client import Client

BATCH = 10_000  # jobs per call: the server's limit
SPAWN_STATES = ("Done", "Obsolete")

__all__ = [
    "BATCH",
    "JobBatch",
    "PendingJob",
    "existing_sort_orders",
    "find_task_types",
    "new_sort_orders",
    "set_job_state",
    "set_job_states",
    "spawn_jobs",
    "spawn_task",
]


def _caller(client: Client | None) -> Client:
    return client if client is not None else _task.current_job().client()


def find_task_types(name: str, *, client: Client | None = None) -> list[dict[str, Any]]:
    """All installed versions of the task type ``name``, newest first (empty if none)."""
    found: list[dict[str, Any]] = _caller(client).get(f"/api/task-types/{quote(name, safe='')}")
    return found


def spawn_task(
    task_type: Mapping[str, Any] | str,
    name: str,
    *,
    spawn_key: str | None = None,
    inputs: Sequence[Mapping[str, Any]] = (),
    client: Client | None = None,
) -> dict[str, Any]:
    """The task ``name`` of ``task_type`` (a dict from ``find_task_types``, or a name for the
    newest version) in this job's workflow: created now, or the one this job's task spawned
    before with ``spawn_key`` (default: ``name``). ``inputs``: ``[{"key": ..., "source":
    {"mode": "none" | "fixed" | "output" | ...}}]``; an ``output`` source names a task of the
    workflow by name or id. Answers ``{"id", "name", "task_type", "inputs", "spawn_key"}``."""
    if isinstance(task_type, str):
        reference: dict[str, Any] = {"name": task_type}
    else:
        reference = {"name": task_type["name"], "version": task_type.get("version")}
    body = {
        "task_type": reference,
        "name": name,
        "spawn_key": spawn_key,
        "inputs": [dict(i) for i in inputs],
    }
    task: dict[str, Any] = _caller(client).post("/api/spawn/tasks", body)
    return task


def job_spec(
    task: Mapping[str, Any] | int,
    *,
    outputs: Mapping[str, Any] | None = None,
    state: str = "Done",
    sort_order: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    inputs: Mapping[str, Any] | None = None,
    source_job_serial: int | None = None,
) -> dict[str, Any]:
    """One item of ``spawn_jobs``, checked for what can be checked here."""
    if state not in SPAWN_STATES:
        raise _task.TaskError(f"a job is spawned Done or Obsolete, not {state!r}")
    task_id = task if isinstance(task, int) else task["id"]
    return {
        "task": task_id,
        "outputs": dict(outputs or {}),
        "state": state,
        "sort_order": sort_order,
        "metadata": dict(metadata or {}),
        "inputs": dict(inputs or {}),
        "source_job_serial": None if source_job_serial is None else int(source_job_serial),
    }


def spawn_jobs(
    jobs: Sequence[Mapping[str, Any]], *, client: Client | None = None
) -> list[dict[str, Any]]:
    """Spawn jobs (items as ``job_spec`` makes them), ``BATCH`` per call; the jobs, in order,
    each a dict with ``serial``, ``run_id``, ``state``, ... ."""
    caller = _caller(client)
    answered: list[dict[str, Any]] = []
    for start in range(0, len(jobs), BATCH):
        chunk = [dict(j) for j in jobs[start : start + BATCH]]
        answered.extend(caller.post("/api/spawn/jobs", {"jobs": chunk}))
    return answered


def existing_sort_orders(*, client: Client | None = None) -> list[str]:
    """The sort orders of the runs of this job's workflow, in order."""
    orders: list[str] = _caller(client).get("/api/spawn/sort-orders")
    return orders


def new_sort_orders(n: int, *, client: Client | None = None) -> list[str]:
    """``n`` sort orders after every run of this job's workflow, in order."""
    from runyard.sortorder import new_keys

    return new_keys(existing_sort_orders(client=client), n)


def set_job_state(
    serial: int, state: str = "Done", *, client: Client | None = None
) -> dict[str, Any]:
    """Change the state of a job this job spawned: ``Obsolete`` -> ``Done`` creates its
    followers then (a run is finished only after all its jobs exist). Setting the state a job
    has already changes nothing."""
    job: dict[str, Any] = _caller(client).post(
        f"/api/spawn/jobs/{int(serial)}/state", {"state": state}
    )
    return job


def set_job_states(
    serials: Sequence[int], state: str = "Done", *, client: Client | None = None
) -> list[dict[str, Any]]:
    """``set_job_state`` for many jobs, ``BATCH`` per call (one transaction each); the jobs."""
    caller = _caller(client)
    answered: list[dict[str, Any]] = []
    for start in range(0, len(serials), BATCH):
        chunk = [int(s) for s in serials[start : start + BATCH]]
        answered.extend(caller.post("/api/spawn/jobs/state", {"serials": chunk, "state": state}))
    return answered


class PendingJob(Mapping[str, Any]):
    """A job that ``JobBatch.add`` accepted: reading any of it (``job["serial"]``) sends the
    batch first, so every value read is the server's."""

    def __init__(self, batch: JobBatch) -> None:
        self._batch = batch
        self._job: dict[str, Any] | None = None
        self._error: Exception | None = None

    def _resolve(self, job: dict[str, Any] | None, error: Exception | None = None) -> None:
        self._job, self._error = job, error

    @property
    def sent(self) -> bool:
        return self._job is not None

    def _value(self) -> dict[str, Any]:
        if self._job is None and self._error is None:
            self._batch.flush()
        if self._error is not None:
            raise _task.TaskError(f"this job was not spawned: {self._error}") from self._error
        assert self._job is not None
        return self._job

    def __getitem__(self, key: str) -> Any:
        return self._value()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._value())

    def __len__(self) -> int:
        return len(self._value())

    def __repr__(self) -> str:
        return repr(self._job) if self._job is not None else "<job not sent yet>"


class JobBatch:
    """Jobs to spawn, sent ``size`` at a time: ``add`` answers a ``PendingJob`` at once, and
    the batch goes to the server when it is full, when ``flush`` is called, or when any
    pending job is read. An error of the server surfaces at that moment (and on reading the
    jobs of the refused batch)."""

    def __init__(self, client: Client | None = None, *, size: int = BATCH) -> None:
        self._client = client
        self.size = max(1, min(size, BATCH))
        self._items: list[dict[str, Any]] = []
        self._pending: list[PendingJob] = []

    def add(self, task: Mapping[str, Any] | int, **fields: Any) -> PendingJob:
        """Queue a job (fields as ``job_spec``'s); the job, sent later."""
        self._items.append(job_spec(task, **fields))
        pending = PendingJob(self)
        self._pending.append(pending)
        if len(self._items) >= self.size:
            self.flush()
        return pending

    def __len__(self) -> int:
        return len(self._items)

    def flush(self) -> None:
        """Send the queued jobs now."""
        items, pending = self._items, self._pending
        self._items, self._pending = [], []
        if not items:
            return
        try:
            answered = spawn_jobs(items, client=self._client)
        except Exception as exc:
            for job in pending:
                job._resolve(None, exc)
            raise
        for job, value in zip(pending, answered, strict=True):
            job._resolve(value)
