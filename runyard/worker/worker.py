"""The worker loop: register, claim (long poll), run up to max jobs at once, heartbeat."""

from __future__ import annotations

import logging
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import runyard
from runyard.client import Client, RemoteError, Unreachable
from runyard.worker import runner
from runyard.worker.forkserver import ForkServer
from runyard.worker.runner import Claimed, ScriptCache

log = logging.getLogger("runyard.worker")


@dataclass(frozen=True, kw_only=True)
class WorkerConfig:
    server: str
    token: str
    name: str
    data_dir: Path
    max_jobs: int = 2
    provides: tuple[str, ...] = ()
    burst: bool = False
    poll_seconds: float = 10.0
    heartbeat_seconds: float = 5.0
    log_seconds: float = 1.0  # how often new script output is sent to the server
    grace_seconds: float = 60.0  # on SIGTERM: how long running jobs may go on
    fast_start: bool = True  # start jobs from the warm fork server


class Worker:
    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.client = Client(config.server, config.token)
        self.scripts = ScriptCache(self.client, config.data_dir / "task-types")
        self.jobs_root = config.data_dir / "jobs"
        self.running: dict[int, Claimed] = {}
        self._lock = threading.Lock()
        self._slot_freed = threading.Event()
        self.stopping = threading.Event()
        self._release_now = threading.Event()
        self.forkserver: ForkServer | None = None
        self.started = 0  # jobs started so far

    def register(self) -> None:
        self.client.post(
            "/api/workers/register",
            {
                "name": self.config.name,
                "provides": list(self.config.provides),
                "max_jobs": self.config.max_jobs,
                "version": runyard.__version__,
            },
        )

    def run(self) -> int:
        """Work until stopped (or, with ``burst``, until nothing is left); jobs run count."""
        self.register()
        if self.config.fast_start:
            self.forkserver = ForkServer(runner.COMPAT_DIR)
        drained = threading.Event()
        heartbeats = threading.Thread(target=self._heartbeat_loop, args=(drained,), daemon=True)
        heartbeats.start()
        try:
            self._work()
        finally:
            drained.set()
            self.stopping.set()
            if self.forkserver is not None:
                self.forkserver.close()
        return self.started

    def _work(self) -> None:
        with ThreadPoolExecutor(max_workers=self.config.max_jobs) as pool:
            while not self.stopping.is_set():
                free = self.config.max_jobs - len(self.running)
                if free <= 0:
                    self._wait_for_slot()
                    continue
                claimed = self._claim(free)
                for item in claimed:
                    with self._lock:
                        self.running[item.serial] = item
                        self.started += 1
                    pool.submit(self._run_one, item)
                if not claimed and self.config.burst:
                    if not self.running:
                        break
                    self._wait_for_slot()
            self._finish_or_release()

    def _finish_or_release(self) -> None:
        """Stopping: let running jobs finish within the grace period (their leases kept
        alive), then kill the rest and give them back to the server, Queued again."""
        if self.running and not self._release_now.is_set():
            log.info(
                "waiting up to %s s for %d running job(s)",
                self.config.grace_seconds,
                len(self.running),
            )
        deadline = time.monotonic() + self.config.grace_seconds
        while self.running and time.monotonic() < deadline:
            if self._release_now.wait(0.1):
                break
        with self._lock:
            left = list(self.running.values())
        for claimed in left:
            self._release(claimed)

    def _release(self, claimed: Claimed) -> None:
        with claimed.reporting:
            if claimed.finished:
                return
            claimed.released.set()
        if claimed.process is not None:
            runner.kill_group(claimed.process)
        try:
            self.client.post(f"/api/jobs/{claimed.serial}/release", {"lease": claimed.lease})
            log.info("job %s released: Queued again for another worker", claimed.serial)
        except (RemoteError, Unreachable) as exc:
            log.warning(
                "job %s could not be released (%s); its lease will expire", claimed.serial, exc
            )

    def stop(self, *_: object) -> None:
        """Stop claiming; a second call gives running jobs back at once."""
        if self.stopping.is_set():
            self._release_now.set()
        self.stopping.set()
        self._slot_freed.set()

    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            if self.stopping.is_set():
                log.info("signal %s again: releasing running jobs now", signum)
            else:
                log.info("signal %s: finishing running jobs, claiming no more", signum)
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def _claim(self, free: int) -> list[Claimed]:
        # A burst worker with jobs still running waits briefly: their followers may come.
        if self.config.burst:
            wait = 0.2 if self.running else 0.0
        else:
            wait = self.config.poll_seconds
        try:
            answer = self.client.post(
                "/api/workers/claim",
                {"worker": self.config.name, "max": free, "wait": wait},
                timeout=wait + 30,
            )
        except RemoteError as exc:
            log.error("claim refused: %s", exc.message)
            self.stopping.wait(1.0)
            return []
        except Unreachable as exc:
            if not self.stopping.is_set():
                log.warning("%s; trying again in 2 s", exc.message)
                self.stopping.wait(2.0)
            return []
        return [Claimed.from_json(item) for item in answer]

    def _run_one(self, claimed: Claimed) -> None:
        """Run jobs in one slot: this one, then (while not stopping) the next ones that
        the server hands out together with each completion."""
        current: Claimed | None = claimed
        while current is not None:
            following = self._run_and_record(current)
            with self._lock:
                self.running.pop(current.serial, None)
                current = following[0] if following else None
                if current is not None:
                    self.running[current.serial] = current
                    self.started += 1
            if current is None:
                self._slot_freed.set()

    def _run_and_record(self, claimed: Claimed) -> list[Claimed]:
        """Run one job and report it; the jobs claimed with the report."""
        try:
            prepared = runner.prepare(claimed, self.scripts, self.jobs_root, self.config.server)
            claimed.log = runner.LogPump(prepared.log)
            outcome = runner.run(claimed, prepared, self.forkserver)
            if claimed.released.is_set():
                return []
            if claimed.stale.is_set():
                log.warning("job %s: lease lost meanwhile; result dropped", claimed.serial)
                return []
            following = runner.record(
                self.client,
                claimed,
                outcome,
                worker=self.config.name,
                claim_next=0 if self.stopping.is_set() else 1,
            )
            if following is None:
                log.warning("job %s: the server refused the stale lease", claimed.serial)
                return []
            return following
        except Exception as exc:
            log.exception("job %s: worker error", claimed.serial)
            try:
                self.client.post(
                    f"/api/jobs/{claimed.serial}/fail",
                    {"lease": claimed.lease, "error": f"worker error: {exc}"},
                )
            except (RemoteError, Unreachable):
                pass
            return []

    def _wait_for_slot(self) -> None:
        self._slot_freed.wait(1.0)
        self._slot_freed.clear()

    def _heartbeat_loop(self, drained: threading.Event) -> None:
        """Every second: send new script output; renew each lease at least every
        ``heartbeat_seconds``."""
        last_beat: dict[int, float] = {}
        while not drained.wait(self.config.log_seconds):
            with self._lock:
                held = list(self.running.values())
            now = time.monotonic()
            for claimed in held:
                due = now - last_beat.get(claimed.serial, now) >= self.config.heartbeat_seconds
                last_beat.setdefault(claimed.serial, now)
                if not (due or (claimed.log is not None and claimed.log.pending())):
                    continue
                try:
                    runner.heartbeat(self.client, claimed)
                    last_beat[claimed.serial] = now
                except Exception:
                    log.exception("heartbeat for job %s failed", claimed.serial)
            for serial in set(last_beat) - {c.serial for c in held}:
                del last_beat[serial]
