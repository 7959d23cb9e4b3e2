"""Workers: registration and the list of workers."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

from runyard.errors import InvalidInput, NotFound
from runyard.models import Worker
from runyard.operations.base import Operations
from runyard.operations.giveback import GivingBack
from runyard.store import workers as worker_rows

# How long a worker's registration is used without reading it again (another server process
# sharing the database may have taken a new registration meanwhile).
WORKER_CACHE_SECONDS = 5.0
# How often a worker's calls are noted as its ``last_seen`` (at most, per server process): the
# UI shows a worker not heard from for a minute as not connected.
SEEN_EVERY = timedelta(seconds=10)


class WorkerManager(Operations):
    def __init__(self, *args: Any, leases: GivingBack, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.leases = leases
        self._known: dict[str, tuple[float, Worker]] = {}
        self._seen: dict[str, datetime] = {}

    def register(
        self,
        name: str,
        *,
        provides: list[str],
        max_jobs: int,
        version: str = "",
        installs: bool = False,
        holds: list[int] | None = None,
    ) -> Worker:
        """Register worker ``name`` (again). ``holds``: the serials of the jobs it holds now
        (none when it starts); its other Running jobs were lost with an earlier process of it,
        and are given back now rather than when their leases run out."""
        if not name.strip():
            raise InvalidInput("a worker needs a name", field="name")
        if max_jobs < 1:
            raise InvalidInput(
                f"max concurrent jobs must be at least 1, not {max_jobs}", field="max_jobs"
            )
        with self.store.write() as conn:
            worker_rows.upsert_worker(
                conn,
                name=name,
                provides=sorted(set(provides)),
                max_jobs=max_jobs,
                version=version,
                installs=installs,
                now=self.now(),
            )
            self._log(
                conn,
                f"worker {name}",
                "worker.register",
                f"worker {name} registered (max {max_jobs} jobs; provides "
                f"{', '.join(provides) or 'nothing'}"
                f"{'; installs dependency packages' if installs else ''})",
            )
            worker = worker_rows.get_worker(conn, name)
        assert worker is not None
        self._known[name] = (time.monotonic() + WORKER_CACHE_SECONDS, worker)
        if holds is not None:
            self.leases.give_back_lost(worker.id, name, keep=set(holds))
        return worker

    def get(self, name: str) -> Worker:
        """A registered worker (what it provides, its slots), as claims need it."""
        cached = self._known.get(name)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        with self.store.read() as conn:
            worker = worker_rows.get_worker(conn, name)
        if worker is None:
            raise NotFound(f"no worker named {name!r} has registered", worker=name)
        self._known[name] = (time.monotonic() + WORKER_CACHE_SECONDS, worker)
        return worker

    def forget(self, name: str) -> None:
        """The worker's registration changed (its environments, an admin's say): claims read
        it again."""
        self._known.pop(name, None)

    def seen(self, name: str) -> None:
        """Worker ``name`` called (a claim, a report, a heartbeat): its ``last_seen`` is now,
        written at most every ``SEEN_EVERY``."""
        now = self.now()
        last = self._seen.get(name)
        # A clock set back (NTP, a test's clock) writes at once rather than freezing last_seen.
        if last is not None and timedelta(0) <= now - last < SEEN_EVERY:
            return
        self._seen[name] = now
        with self.store.write() as conn:
            worker_rows.set_last_seen(conn, name, now)

    def list_all(self) -> list[Worker]:
        with self.store.read() as conn:
            return worker_rows.list_workers(conn)

    def set_limit(self, name: str, limit: int | None, *, actor: str = "system") -> Worker:
        """Limit a worker's concurrent jobs (0: it takes no new job; None: only the limit it
        registered with). Claims respect it within ``WORKER_CACHE_SECONDS``."""
        if limit is not None and limit < 0:
            raise InvalidInput(f"a limit is 0 or more, not {limit}", field="max_jobs")
        with self.store.write() as conn:
            if not worker_rows.set_limit(conn, name, limit):
                raise NotFound(f"no worker named {name!r} has registered", worker=name)
            shown = "none (its own)" if limit is None else str(limit)
            self._log(conn, actor, "worker.limit", f"worker {name}: max concurrent jobs {shown}")
            worker = worker_rows.get_worker(conn, name)
        assert worker is not None
        self._known.pop(name, None)
        return worker

    def running(self) -> dict[int, list[int]]:
        """{worker id: serials of its Running jobs}."""
        with self.store.read() as conn:
            return worker_rows.running_jobs(conn)
