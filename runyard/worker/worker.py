"""The worker: claims jobs, runs up to ``max_jobs`` of them at once, reports them.

Three kinds of threads share a small amount of state under one condition variable:

- **slots** (``max_jobs`` of them) take the next claimed job, run it (``runner``) and queue
  its result;
- the **reporter** sends every queued result in one request, which also claims as many new
  jobs as the worker has room for: while a slot runs one job, the next is already here, so
  the round trips to the server are not on the jobs' path;
- the **claimer** long-polls the server for work when the worker has room and nothing to
  report, and stops the worker in ``--burst`` mode once nothing is left.

A heartbeat thread renews the leases of all held jobs (claimed, running) in one request per
second that also carries the scripts' new output (the live job log); a lease the server
refuses (the job was aborted, or given to another worker) kills the job's script.
"""

from __future__ import annotations

import logging
import shutil
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import runyard
from runyard.client import Client, RemoteError, Unreachable
from runyard.worker import runner
from runyard.worker.forkserver import ForkServer
from runyard.worker.runner import Claimed, Outcome, ScriptCache

log = logging.getLogger("runyard.worker")
MAX_CLAIM = 256  # the most jobs the server hands out per claim (ClaimRequest.max)


@dataclass(frozen=True, kw_only=True)
class WorkerConfig:
    server: str
    token: str
    name: str
    data_dir: Path
    max_jobs: int = 2
    provides: tuple[str, ...] = ()
    burst: bool = False
    # Longest wait of an idle worker's claim (the server answers at once when a job comes):
    # also how long a stop signal may wait for that request to return.
    poll_seconds: float = 2.0
    # How often the leases of held jobs are renewed, with the scripts' new output: also how
    # soon an aborted job's script is killed.
    heartbeat_seconds: float = 1.0
    grace_seconds: float = 60.0  # on SIGTERM: how long running jobs may go on
    fast_start: bool = True  # start jobs from the warm fork server

    ahead_seconds: float = 0.5  # claim ahead for a slot whose job started this recently
    give_back_seconds: float = 2.0  # a job claimed ahead and not started by then goes back


class Worker:
    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.client = Client(config.server, config.token)
        self.scripts = ScriptCache(self.client, config.data_dir / "task-types")
        self.jobs_root = config.data_dir / "jobs"
        self.forkserver: ForkServer | None = None
        self._forkserver_lock = threading.Lock()
        self.started = 0  # jobs started so far
        self.stopping = threading.Event()
        self._release_now = threading.Event()
        self._changed = threading.Condition()
        # Under _changed: jobs claimed and not started, jobs held (claimed or running),
        # results to report, and whether a report or claim request is on its way.
        self.waiting: deque[Claimed] = deque()
        self.held: dict[int, Claimed] = {}
        self.results: list[tuple[Claimed, dict[str, Any]]] = []
        self._busy_slots = 0
        self._reports_in_flight = 0
        self._beating = False  # a heartbeat request is on its way
        self._finished = False
        self._trash: deque[Path] = deque()

    # -- life cycle ------------------------------------------------------------------------

    def register(self) -> None:
        """Announce this worker; while the server cannot be reached, try again every 2 s."""
        body = {
            "name": self.config.name,
            "provides": list(self.config.provides),
            "max_jobs": self.config.max_jobs,
            "version": runyard.__version__,
        }
        while True:
            try:
                self.client.post("/api/workers/register", body)
                return
            except Unreachable as exc:
                log.warning("%s; trying again in 2 s", exc.message)
                if self.stopping.wait(2.0):
                    raise

    def run(self) -> int:
        """Work until stopped (or, with ``burst``, until nothing is left); jobs started."""
        self.register()
        if self.config.fast_start:
            self.forkserver = ForkServer(runner.COMPAT_DIR)
        threads = [
            threading.Thread(target=self._slot, name=f"slot-{i}", daemon=True)
            for i in range(self.config.max_jobs)
        ]
        threads.append(threading.Thread(target=self._report_loop, name="reporter", daemon=True))
        background = [
            threading.Thread(target=self._heartbeat_loop, name="heartbeat", daemon=True),
            threading.Thread(target=self._clean_loop, name="cleaner", daemon=True),
        ]
        for thread in threads + background:
            thread.start()
        try:
            self._claim_loop()
            self._finish_or_release()
        finally:
            self.stop()
            self._release_now.set()
            with self._changed:
                self._changed.notify_all()
            for thread in threads:
                thread.join()
            self._finished = True
            self._empty_trash()
            with self._forkserver_lock:
                if self.forkserver is not None:
                    self.forkserver.close()
        return self.started

    def stop(self, *_: object) -> None:
        """Stop claiming; a second call gives running jobs back at once."""
        if self.stopping.is_set():
            self._release_now.set()
        self.stopping.set()
        with self._changed:
            self._changed.notify_all()

    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            if self.stopping.is_set():
                log.info("signal %s again: releasing running jobs now", signum)
            else:
                log.info("signal %s: finishing running jobs, claiming no more", signum)
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    # -- claiming --------------------------------------------------------------------------

    def _room(self) -> int:
        """How many more jobs to claim (called under _changed): one per free slot, and one
        ahead for each slot whose job started just now (short jobs follow each other
        without waiting for the server; long ones do not hoard work other workers could
        do)."""
        if self.stopping.is_set():
            return 0
        now = time.monotonic()
        ahead = sum(
            1
            for c in self.held.values()
            if c.started_at is not None and now - c.started_at < self.config.ahead_seconds
        )
        return max(0, self.config.max_jobs + ahead - len(self.held))

    def _claim_loop(self) -> None:
        while not self.stopping.is_set():
            with self._changed:
                # While results are waiting or being reported, that report claims.
                self._changed.wait_for(
                    lambda: (
                        self.stopping.is_set()
                        or (self._room() > 0 and not self.results and not self._reports_in_flight)
                    ),
                    timeout=1.0,
                )
                room = self._room()
                idle = not self.held and not self.results
                reporting = bool(self.results or self._reports_in_flight)
            if room <= 0 or reporting or self.stopping.is_set():
                continue
            if self.config.burst:
                wait = 0.0 if idle else 0.2  # followers of running jobs may come
            else:
                wait = self.config.poll_seconds if idle else 1.0
            claimed = self._request_claim(room, wait)
            self._take(claimed)
            if self.config.burst and not claimed:
                with self._changed:
                    if not self.held and not self.results and not self._reports_in_flight:
                        return

    def _request_claim(self, room: int, wait: float) -> list[dict[str, Any]]:
        try:
            answer: list[dict[str, Any]] = self.client.post(
                "/api/workers/claim",
                {"worker": self.config.name, "max": min(room, MAX_CLAIM), "wait": wait},
                timeout=wait + 30,
            )
            return answer
        except RemoteError as exc:
            log.error("claim refused: %s", exc.message)
            self.stopping.wait(1.0)
        except Unreachable as exc:
            if not self.stopping.is_set():
                log.warning("%s; trying again in 2 s", exc.message)
                self.stopping.wait(2.0)
        return []

    def _take(self, claimed: list[dict[str, Any]]) -> None:
        """Hold newly claimed jobs; slots start them (or, when stopping, give them back)."""
        items = [Claimed.from_json(data) for data in claimed]
        with self._changed:
            for item in items:
                self.held[item.serial] = item
                self.waiting.append(item)
            self._changed.notify_all()
        if self.stopping.is_set():
            self._release_waiting()

    # -- slots -------------------------------------------------------------------------------

    def _slot(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self.waiting) or self._done_claiming())
                if not self.waiting:
                    return
                claimed = self.waiting.popleft()
                claimed.started_at = time.monotonic()
                self._busy_slots += 1
                self.started += 1
            item = None
            try:
                item = self._run(claimed)
            finally:
                with self._changed:
                    self._busy_slots -= 1
                    if item is None:  # given back or dropped: nothing of it is kept
                        self.held.pop(claimed.serial, None)
                        if claimed.workdir is not None:
                            self._trash.append(claimed.workdir)
                    else:
                        self.results.append((claimed, item))
                    self._changed.notify_all()

    def _done_claiming(self) -> bool:
        return self.stopping.is_set() and (self._release_now.is_set() or not self.waiting)

    def _run(self, claimed: Claimed) -> dict[str, Any] | None:
        """Run one job; its report, or None when there is nothing to report."""
        if claimed.released.is_set() or claimed.stale.is_set():
            return None  # given back or aborted before it started
        try:
            prepared = runner.prepare(claimed, self.scripts, self.jobs_root, self.config.server)
            claimed.workdir = prepared.workdir
            claimed.log = runner.LogPump(prepared.log)
            outcome = runner.run(claimed, prepared, self._live_forkserver())
        except Unreachable as exc:
            # The script could not be fetched: not the job's fault, another try may work.
            log.warning("job %s: %s; giving it back", claimed.serial, exc.message)
            self._release(claimed)
            return None
        except runner.GiveBack as exc:
            log.warning("job %s: %s; giving it back", claimed.serial, exc)
            self._release(claimed)
            return None
        except Exception as exc:
            log.exception("job %s: worker error", claimed.serial)
            outcome = Outcome(
                ok=False, outputs={}, error=f"worker error: {exc}", workdir=claimed.workdir
            )
        if claimed.released.is_set():
            return None
        if claimed.stale.is_set():
            log.warning("job %s: lease lost meanwhile; result dropped", claimed.serial)
            return None
        return runner.result(claimed, outcome)

    def _live_forkserver(self) -> ForkServer | None:
        """The fork server; a new one if it has died (its jobs were given back)."""
        with self._forkserver_lock:
            server = self.forkserver
            if server is not None and not server.alive and not self.stopping.is_set():
                log.warning("the fork server stopped; starting a new one")
                server.close()
                self.forkserver = ForkServer(runner.COMPAT_DIR)
            return self.forkserver

    # -- reporting ---------------------------------------------------------------------------

    def _report_loop(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: bool(self.results) or self._all_done())
                if not self.results:
                    return
                batch, self.results = self.results, []
                room = self._room() + len(batch)
                self._reports_in_flight += 1
            try:
                self._report(batch, room)
            finally:
                with self._changed:
                    self._reports_in_flight -= 1
                    self._changed.notify_all()

    def _all_done(self) -> bool:
        """Stopping, and no slot will produce another result."""
        return self.stopping.is_set() and self._busy_slots == 0 and not self.waiting

    def _report(self, batch: list[tuple[Claimed, dict[str, Any]]], room: int) -> None:
        self._log_rests(batch)
        body = {
            "worker": self.config.name,
            "results": [item for _, item in batch],
            "claim": 0 if self.stopping.is_set() else min(room, MAX_CLAIM),
        }
        answer: dict[str, Any] = {}
        delay = 1.0
        while True:
            try:
                answer = self.client.post("/api/workers/report", body)
                break
            except Unreachable as exc:
                log.warning("%s; reporting again in %.0f s", exc.message, delay)
            except RemoteError as exc:
                if exc.status_code < 500:
                    log.error(
                        "the server refused a report (%d results): %s", len(batch), exc.message
                    )
                    break
                log.warning("the server failed a report: %s; reporting again", exc.message)
            # The heartbeat keeps these jobs' leases alive: retry until the server answers
            # (or refuses the lease), unless the worker is told to stop at once.
            if self._release_now.wait(delay):
                log.error("%d result(s) not reported; their leases will expire", len(batch))
                break
            delay = min(2 * delay, 10.0)
            body["claim"] = 0 if self.stopping.is_set() else body["claim"]
        answers = {a["serial"]: a for a in answer.get("results", [])}
        with self._changed:
            for claimed, item in batch:
                self.held.pop(claimed.serial, None)
                got = answers.get(claimed.serial, {})
                if "error" in got:
                    log.warning("job %s: %s", claimed.serial, got["error"]["message"])
                # Only a Failed job's folder is kept (for inspection): also when the
                # report was not answered and the job failed here.
                failed = got.get("state") == "Failed" or (not got and not item.get("ok"))
                if not failed and claimed.workdir is not None:
                    self._trash.append(claimed.workdir)
            self._changed.notify_all()
        self._take(answer.get("claimed", []))

    # -- stopping ----------------------------------------------------------------------------

    def _finish_or_release(self) -> None:
        """Stopping: give back the jobs not started; let running jobs finish within the
        grace period (their leases kept alive); then kill the rest and give them back."""
        self._release_waiting()
        deadline = time.monotonic() + self.config.grace_seconds
        with self._changed:
            if self._busy_slots and not self._release_now.is_set():
                log.info(
                    "waiting up to %s s for %d running job(s)",
                    self.config.grace_seconds,
                    self._busy_slots,
                )
            while self._busy_slots and not self._release_now.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(min(left, 0.2))
            running = [c for c in self.held.values() if not c.finished]
        for claimed in running:
            self._release(claimed)

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
            with self._changed:
                self.held.pop(claimed.serial, None)
                self._changed.notify_all()

    def _release(self, claimed: Claimed) -> None:
        with claimed.reporting:
            if claimed.finished:
                return
            claimed.released.set()
            process = claimed.process
        if process is not None:
            runner.kill_group(process)
        try:
            self.client.post(f"/api/jobs/{claimed.serial}/release", {"lease": claimed.lease})
            log.info("job %s given back: Queued again for another worker", claimed.serial)
        except (RemoteError, Unreachable) as exc:
            log.warning("job %s not given back (%s); its lease will expire", claimed.serial, exc)

    # -- heartbeats and cleaning -------------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        """Every ``heartbeat_seconds``: one request for all held jobs renews their leases and
        sends the scripts' new output."""
        while not self._release_now.wait(self.config.heartbeat_seconds):
            if not self.stopping.is_set():
                self._release_waiting(older_than=self.config.give_back_seconds)
            with self._changed:
                held = list(self.held.values())
            if not held:
                continue
            try:
                self._beat(held)
            except Unreachable as exc:
                log.warning("heartbeat: %s; trying again", exc.message)
            except Exception:
                log.exception("heartbeat failed; trying again")

    def _beat(self, held: list[Claimed]) -> None:
        """One heartbeat for the held jobs. No job's lock is held while the request waits
        for the server: a job that ends meanwhile is queued for its report, whose rest of
        the log is read only once this heartbeat has been answered (``_log_rests``)."""
        with self._changed:
            self._beating = True
        try:
            beats = []
            for claimed in held:
                with claimed.reporting:
                    item = runner.beat(claimed)
                if item is not None:
                    beats.append(item)
            if not beats:
                return
            try:
                answer = self.client.post(
                    "/api/workers/heartbeat", {"worker": self.config.name, "beats": beats}
                )
            except Exception:
                # Not delivered: the output goes with the next heartbeat (or the report).
                texts = {b["serial"]: b["log"] for b in beats}
                for claimed in held:
                    if claimed.log is not None and texts.get(claimed.serial):
                        claimed.log.put_back(texts[claimed.serial])
                raise
            for claimed in held:
                if claimed.serial in answer["refused"]:
                    with claimed.reporting:
                        runner.lost(claimed)
        finally:
            with self._changed:
                self._beating = False
                self._changed.notify_all()

    def _log_rests(self, batch: list[tuple[Claimed, dict[str, Any]]]) -> None:
        """Put the rest of each finished job's log into its report: after any heartbeat
        that carried earlier output (heartbeats read no more of a finished job's log)."""
        with self._changed:
            self._changed.wait_for(lambda: not self._beating)
        for claimed, item in batch:
            item["log"] = claimed.log.read(final=True) if claimed.log else ""

    def _clean_loop(self) -> None:
        """Delete the working folders of jobs that are not Failed (Done, given back,
        dropped) off the jobs' path."""
        while not self._finished:
            time.sleep(0.5)
            self._empty_trash()

    def _empty_trash(self) -> None:
        while True:
            try:
                path = self._trash.popleft()
            except IndexError:
                return
            shutil.rmtree(path, ignore_errors=True)
