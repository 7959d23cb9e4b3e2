"""Claims: a worker takes up to so many of the jobs it can run, each under a new lease, in
one atomic statement of the store; a call made for a worker acts only on the jobs that worker
holds (``Forbidden``, HTTP 403, for a job another worker holds). ``Claiming`` is the first
layer of ``LeaseManager`` (see ``leases.py``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from runyard.errors import Forbidden
from runyard.models import Capabilities, Job, Lease
from runyard.operations.environments import EnvironmentManager
from runyard.operations.giveback import GivingBack
from runyard.store import leases as lease_rows
from runyard.store import workers as worker_rows


class Claiming(GivingBack):
    def __init__(self, *args: Any, environments: EnvironmentManager, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.environments = environments
        # What claims look up again and again: the task types a worker can run (by what it
        # provides, has installed or may install; checked against the catalog of task types
        # and dependency packages), and the names of workers by id (a worker keeps its name).
        self._runnable: dict[Capabilities, tuple[tuple[int, ...], list[int] | None]] = {}
        self._worker_names: dict[int, str] = {}

    def claim(
        self,
        worker_id: int,
        provides: list[str] | Capabilities,
        limit: int,
        *,
        cap: int | None = None,
    ) -> list[tuple[Job, Lease]]:
        """Claim up to ``limit`` jobs that a worker can run (``provides``: the names of the
        dependency packages it provides, or all it can do, ``Worker.capabilities``); with
        ``cap`` (an admin's limit), never more than ``cap`` Running at once."""
        can = provides if isinstance(provides, Capabilities) else Capabilities(frozenset(provides))
        # Look first without the write lock: most claims of a waiting worker find nothing.
        with self.store.read() as conn:
            if cap is not None:
                limit = min(limit, cap - self._held(conn, worker_id))
            if limit <= 0 or not lease_rows.any_claimable(conn, self._runnable_ids(conn, can)):
                return []
        with self.store.write() as conn:
            return self._claim(conn, worker_id, can, limit, cap)

    def _claim(
        self, conn: Connection, worker_id: int, can: Capabilities, limit: int, cap: int | None
    ) -> list[tuple[Job, Lease]]:
        if cap is not None:
            limit = min(limit, cap - self._held(conn, worker_id))
        if limit <= 0:
            return []
        return lease_rows.claim(
            conn,
            task_type_ids=self._runnable_ids(conn, can),
            worker_id=worker_id,
            worker_name=self._worker_name(conn, worker_id),
            limit=limit,
            lease_seconds=self.settings.lease_seconds,
            now=self.now(),
        )

    @staticmethod
    def _held(conn: Connection, worker_id: int) -> int:
        return len(worker_rows.running_jobs(conn, worker_id).get(worker_id, []))

    def _runnable_ids(self, conn: Connection, can: Capabilities) -> list[int] | None:
        """The task types a worker that ``can`` may run; None: all of them."""
        installed = self.environments.catalog_version(conn)
        cached = self._runnable.get(can)
        if cached is not None and cached[0] == installed:
            return cached[1]
        ids, every = self.environments.runnable_ids(conn, can)
        runnable = None if every else ids
        self._runnable[can] = (installed, runnable)
        return runnable

    def _worker_name(self, conn: Connection, worker_id: int) -> str:
        name = self._worker_names.get(worker_id)
        if name is None:
            name = self._worker_names[worker_id] = worker_rows.name_of(conn, worker_id) or "?"
        return name


def check_holder(conn: Connection, serial: int, lease_id: str, worker: str | None) -> None:
    """Refuse a call made for ``worker`` (None: the admin, for any worker) on a job that
    another worker holds under ``lease_id``. A lease that is not the job's is left to the
    guarded update (``StaleLease``)."""
    if worker is not None:
        refuse_other_worker(serial, lease_rows.lease_holder(conn, serial, lease_id), worker)


def refuse_other_worker(serial: int, holder: str | None, worker: str) -> None:
    if holder is not None and holder != worker:
        raise Forbidden(
            f"job {serial} is held by worker {holder}, not by {worker}: a worker token acts "
            f"only on the jobs its own worker has claimed",
            serial=serial,
            worker=worker,
            holder=holder,
        )
