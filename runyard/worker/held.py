"""The jobs a worker holds, and giving them back: the state its threads share.

``HeldJobs`` is the first layer of ``Worker`` (``heartbeat.Heartbeats`` and
``claims.Claiming`` build on it): under one lock, the jobs claimed and not started yet
(``waiting``), all jobs held (claimed or running, until reported), the results to report, and
how many slots and reports are busy. Three conditions on that lock wake only the threads that
a change concerns: ``_has_work`` the slots (a job to start), ``_has_results`` the reporter (a
result to report), ``_changed`` the claimer and the rest (room for more jobs, a heartbeat
answered, stopping). Giving a job back (``_release``) kills its script and tells the server,
which queues the job again for another worker.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

from runyard.client import Client, RemoteError, Unreachable
from runyard.worker.claimed import Claimed
from runyard.worker.config import WorkerConfig
from runyard.worker.connection import WorkerClient
from runyard.worker.folders import WorkingFolders
from runyard.worker.processes import kill_group

log = logging.getLogger("runyard.worker")


class HeldJobs:
    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.client: Client = WorkerClient(config.server, config.token)
        self.stopping = threading.Event()
        self._release_now = threading.Event()
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._has_work = threading.Condition(self._lock)
        self._has_results = threading.Condition(self._lock)
        # Under _lock: jobs claimed and not started, jobs held (claimed or running),
        # results to report, and how many slots and reports are busy.
        self.waiting: deque[Claimed] = deque()
        self.held: dict[int, Claimed] = {}
        self.results: list[tuple[Claimed, dict[str, Any]]] = []
        self._busy_slots = 0
        self._reports_in_flight = 0
        self.jobs_root = config.data_dir / "jobs"
        self.folders = WorkingFolders(self.jobs_root, max_spares=max(32, 8 * config.max_jobs))
        self.refused: str | None = None  # why the server refused this worker's token

    def _refuses_token(self, exc: RemoteError) -> bool:
        """Whether the server refused this worker's token (revoked, rotated or unknown).
        If so the worker stops at once: every later call would be refused as well, and its
        jobs' leases are no longer its to renew (they expire and the jobs are queued again)."""
        if exc.status_code != 401:
            return False
        if self.refused is None:
            self.refused = exc.message
            log.error(
                "the server refuses this worker's token (%s): stopping. Give the worker a new "
                "token (runyard token create-worker %s) and start it again",
                exc.message,
                self.config.name,
            )
        self.stopping.set()
        self._release_now.set()
        self._wake_all()
        return True

    def _wake_all(self) -> None:
        """Wake every waiting thread (stopping, jobs given back): each looks again."""
        with self._lock:
            for condition in (self._changed, self._has_work, self._has_results):
                condition.notify_all()

    def _release_waiting(self, older_than: float | None = None) -> None:
        """Give back the jobs claimed and not started (those claimed before ``older_than``
        seconds ago)."""
        now = time.monotonic()
        with self._changed:
            keep: deque[Claimed] = deque()
            waiting = []
            for claimed in self.waiting:
                if older_than is None or now - claimed.claimed_at > older_than:
                    waiting.append(claimed)
                else:
                    keep.append(claimed)
            self.waiting = keep
        for claimed in waiting:
            self._release(claimed)
            with self._lock:
                self.held.pop(claimed.serial, None)
            self._wake_all()

    def _release(self, claimed: Claimed) -> None:
        with claimed.reporting:
            if claimed.finished:
                return
            claimed.released.set()
            process = claimed.process
        if process is not None:
            kill_group(process)
        try:
            self.client.post(f"/api/jobs/{claimed.serial}/release", {"lease": claimed.lease})
            log.info("job %s given back: Queued again for another worker", claimed.serial)
        except (RemoteError, Unreachable) as exc:
            log.warning("job %s not given back (%s); its lease will expire", claimed.serial, exc)
