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
Every call here is safe to send twice (spawn keys, states set to what they are), so the
job's client tries each again while the server is away (``runyard.task.job_client``).
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
from runyard.spawnkeys import spawn_key

if TYPE_CHECKING:
    from runyard.client import Client

BATCH = 10_000  # jobs per call: the server's limit
SPAWN_STATES = ("Done", "Obsolete")

__all__ = [
    "BATCH",
    "JobBatch",
    "PendingJob",
    "Reservations",
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
    task: dict[str, Any] = _caller(client).post("/api/spawn/tasks", body, idempotent=True)
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
        answered.extend(caller.post("/api/spawn/jobs", {"jobs": chunk}, idempotent=True))
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
        f"/api/spawn/jobs/{int(serial)}/state", {"state": state}, idempotent=True
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
        body = {"serials": chunk, "state": state}
        answered.extend(caller.post("/api/spawn/jobs/state", body, idempotent=True))
    return answered


class PendingJob(Mapping[str, Any]):
    """A job that ``JobBatch.add`` accepted (or a state change ``JobBatch.set_state``
    queued): reading it (``job["run_id"]``) sends the batch first, so every value read is
    the server's. Its ``serial``, when the batch had one reserved for it, is read without
    sending anything."""

    def __init__(self, batch: JobBatch, serial: int | None = None) -> None:
        self._batch = batch
        self._serial = serial
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
        if key == "serial" and self._serial is not None and self._job is None:
            if self._error is not None:
                raise _task.TaskError(f"this job was not spawned: {self._error}")
            return self._serial
        return self._value()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._value())

    def __len__(self) -> int:
        return len(self._value())

    def __repr__(self) -> str:
        if self._job is not None:
            return repr(self._job)
        return f"<job {self._serial} not sent yet>" if self._serial else "<job not sent yet>"


class Reservations:
    """The serials of the jobs this job spawns, known before the jobs are sent. A job that
    had spawned nothing when it first asked gets serials reserved for it (``POST
    /api/spawn/serials``: 100 at first, then twice as many each time, up to ``BATCH``). A
    retried job first reads the keys of the jobs its earlier attempts spawned (``GET
    /api/spawn/keys``): a job spawned again with the same key (``runyard.spawnkeys``) is
    answered that job's serial, and only new ones take reserved serials. So a script that
    reads ``job["serial"]`` is told the serial of the job the server will answer, on the
    first attempt and on a retry alike. One per spawning job, shared by its batches."""

    def __init__(self) -> None:
        self._free: list[int] = []  # reversed: pop() gives the next
        self._next_count = 100
        self._known: dict[str, int] = {}  # spawn key -> serial of a job spawned with it
        self.fresh: bool | None = None  # whether the job had spawned nothing: unknown yet

    def serial_for(self, client: Client, item: Mapping[str, Any]) -> tuple[int, bool]:
        """The serial the job ``item`` (as ``job_spec`` makes it) will have, and whether it
        is a reserved one to send with it (False: a job spawned before with the same key,
        which the server answers as it is)."""
        if self.fresh is None:
            self._reserve(client)
            if not self.fresh:
                self._read_known(client)
        key = spawn_key(
            item["task"], item["outputs"], item["inputs"], item["metadata"],
            item["source_job_serial"],
        )  # fmt: skip
        known = self._known.get(key)
        if known is not None:
            return known, False
        if not self._free:
            self._reserve(client)
        serial = self._free.pop()
        self._known[key] = serial
        return serial, True

    def _reserve(self, client: Client) -> None:
        # Asking again after a lost answer reserves other serials (the first ones go
        # unused): safe to repeat.
        answer = client.post("/api/spawn/serials", {"count": self._next_count}, idempotent=True)
        if self.fresh is None:
            self.fresh = bool(answer["fresh"])
        self._next_count = min(BATCH, self._next_count * 2)
        self._free = [n for a, b in answer["ranges"] for n in range(a, b + 1)][::-1]

    def _read_known(self, client: Client) -> None:
        after = 0
        while page := client.get("/api/spawn/keys", params={"after": after, "limit": BATCH}):
            self._known.update((key, serial) for key, serial in page)
            after = page[-1][1]


class JobBatch:
    """Jobs to spawn and state changes of spawned jobs, in the order they were asked for,
    sent ``size`` at a time in one transaction each: ``add`` and ``set_state`` answer a
    ``PendingJob`` at once, and the batch goes to the server when it is full, when
    ``flush`` is called, or when a pending job is read (but for a reserved ``serial``). An
    error of the server surfaces at that moment (and on reading the jobs of the refused
    batch). With ``reservations`` (the default: new ones), each job gets a serial reserved
    beforehand, so that a script that reads ``job["serial"]`` to join or finish the run
    sends nothing until the batch is full."""

    def __init__(
        self,
        client: Client | None = None,
        *,
        size: int = BATCH,
        reservations: Reservations | None = None,
    ) -> None:
        self._client = client
        self.size = max(1, min(size, BATCH))
        self._reservations = reservations if reservations is not None else Reservations()
        self._items: list[dict[str, Any]] = []
        self._pending: list[PendingJob] = []
        self._states: list[dict[str, Any]] = []
        self._pending_states: list[PendingJob] = []
        self._alias: dict[int, int] = {}  # a reserved serial -> the job answered for it

    def add(self, task: Mapping[str, Any] | int, **fields: Any) -> PendingJob:
        """Queue a job (fields as ``job_spec``'s); the job, sent later."""
        item = job_spec(task, **fields)
        source = item["source_job_serial"]
        if source is not None:
            item["source_job_serial"] = self._alias.get(source, source)
        serial, reserved = self._reservations.serial_for(_caller(self._client), item)
        if reserved:
            item["serial"] = serial
        self._items.append(item)
        pending = PendingJob(self, serial)
        self._pending.append(pending)
        self._full()
        return pending

    def set_state(self, job: Mapping[str, Any] | int, state: str = "Done") -> PendingJob:
        """Queue a state change of a spawned job (Done or Obsolete), after the jobs queued
        so far; the job as it is once the batch is applied."""
        if state not in SPAWN_STATES:
            raise _task.TaskError(f"a spawned job is set Done or Obsolete, not {state!r}")
        serial = int(job if isinstance(job, int) else job["serial"])
        change = {"serial": self._alias.get(serial, serial), "state": state}
        self._states.append(change | {"after": len(self._items)})
        pending = PendingJob(self)
        self._pending_states.append(pending)
        self._full()
        return pending

    def __len__(self) -> int:
        return len(self._items) + len(self._states)

    def _full(self) -> None:
        if len(self) >= self.size:
            self.flush()

    def flush(self) -> None:
        """Send the queued jobs and state changes now."""
        if not len(self):
            return
        items, pending = self._items, self._pending
        states, pending_states = self._states, self._pending_states
        self._items, self._pending, self._states, self._pending_states = [], [], [], []
        try:
            answer = _caller(self._client).post(
                "/api/spawn/batch", {"jobs": items, "states": states}, idempotent=True
            )
        except Exception as exc:
            for job in [*pending, *pending_states]:
                job._resolve(None, exc)
            raise
        for job, item, value in zip(pending, items, answer["jobs"], strict=True):
            job._resolve(value)
            reserved = item.get("serial")
            if reserved is not None and value["serial"] != reserved:
                self._alias[reserved] = value["serial"]
        for job, value in zip(pending_states, answer["states"], strict=True):
            job._resolve(value)
