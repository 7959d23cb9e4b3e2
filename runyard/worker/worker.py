"""The worker: claims jobs, runs up to ``max_jobs`` of them at once, reports them.

Threads share the state of the jobs held (``held.HeldJobs``) under one lock:

- **slots** (``max_jobs`` of them, here) take the next claimed job, run it (``runner``:
  prepare, run, record) and queue its result;
- the **reporter** and the **claimer** (``claims``) send the results, each report also
  claiming new jobs, and long-poll for work when there is nothing to report;
- the **heartbeat** (``heartbeat``) renews the leases of all held jobs once a second, with
  the scripts' new output, and kills the script of a job whose lease the server refuses;
- the **cleaner** (here) deletes the working folders of jobs that are not Failed and whose
  folders do not serve other jobs (``folders``).

``Worker`` keeps the life cycle: register, start the threads, stop (claim no more; a second
stop gives running jobs back at once), the grace period for running jobs, the fork server
and the reused children (``reuse``) of task types with ``jobs_per_process``; or, with
``--executor slurm``, the link to Slurm (``slurm``) that runs the jobs' scripts instead.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any

import runyard
from runyard.client import Unreachable
from runyard.worker import runner
from runyard.worker.claimed import Claimed
from runyard.worker.claims import Claiming
from runyard.worker.config import WorkerConfig as WorkerConfig  # re-exported: the CLI's
from runyard.worker.environments import PRIVATE, EnvironmentFailed, Environments
from runyard.worker.forkserver import ForkServer
from runyard.worker.joblog import LogPump
from runyard.worker.prepare import COMPAT_DIR, ScriptCache, prepare
from runyard.worker.processes import GiveBack
from runyard.worker.reuse import ReusePool
from runyard.worker.runner import Outcome
from runyard.worker.slurm import Slurm

log = logging.getLogger("runyard.worker")


class Worker(Claiming):
    def __init__(self, config: WorkerConfig) -> None:
        super().__init__(config)
        self.scripts = ScriptCache(self.client, config.data_dir / "task-types")
        # The jobs' environments start from the worker's, as it is when the worker starts,
        # without its own token (a job has its own).
        self.base_env = {k: v for k, v in os.environ.items() if k not in PRIVATE}
        self.environments = Environments(config.data_dir / "environments", self.client, config.name)
        # A warm fork server per Python: the worker's, and each environment's (made when its
        # first job starts).
        self.forkservers: dict[str, ForkServer] = {}
        self.children = ReusePool(max_idle=config.max_jobs)
        self._forkserver_lock = threading.Lock()
        # With --executor slurm: scripts run as Slurm jobs (no fork server, no reused child).
        self.slurm: Slurm | None = None
        if config.executor == "slurm":
            self.slurm = Slurm(
                config.slurm, worker=config.name, server=config.server, data_dir=config.data_dir
            )
        self._installing: set[str] = set()  # environments an admin asked for, being made
        self.started = 0  # jobs started so far
        self._finished = False

    # -- life cycle ------------------------------------------------------------------------

    def register(self) -> None:
        """Announce this worker; while the server cannot be reached, try again every 2 s."""
        body = {
            "name": self.config.name,
            "provides": list(self.config.provides),
            "max_jobs": self.config.max_jobs,
            "version": runyard.__version__,
            "installs": self.config.installs,
            # Jobs it held before it started again were lost: the server gives them back.
            "holds": sorted(self.held),
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
        if self.slurm is not None:
            self.slurm.check()
        self.register()
        if self.slurm is not None:
            self.slurm.cancel_leftovers()
        elif self.config.fast_start:
            self.forkservers[sys.executable] = ForkServer(COMPAT_DIR)
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
            self._wake_all()
            for thread in threads:
                thread.join()
            self._finished = True
            self.folders.close()
            self.children.close()
            if self.slurm is not None:
                self.slurm.close()
            with self._forkserver_lock:
                for server in self.forkservers.values():
                    server.close()
        return self.started

    def stop(self, *_: object) -> None:
        """Stop claiming; a second call gives running jobs back at once."""
        if self.stopping.is_set():
            self._release_now.set()
        self.stopping.set()
        self._wake_all()

    def install_signal_handlers(self) -> None:
        def handler(signum: int, frame: FrameType | None) -> None:
            if self.stopping.is_set():
                log.info("signal %s again: releasing running jobs now", signum)
            else:
                log.info("signal %s: finishing running jobs, claiming no more", signum)
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    # -- slots -------------------------------------------------------------------------------

    def _slot(self) -> None:
        while True:
            with self._lock:
                self._has_work.wait_for(lambda: bool(self.waiting) or self._done_claiming())
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
                with self._lock:
                    self._busy_slots -= 1
                    if item is None:  # given back or dropped: nothing of it is kept
                        self.held.pop(claimed.serial, None)
                        if claimed.workdir is not None:
                            self.folders.discard(claimed.workdir)
                        self._changed.notify_all()  # the claimer: room for another job
                    else:
                        self.results.append((claimed, item))
                    self._has_results.notify()
                    if self.stopping.is_set():  # waiting for the running jobs to end
                        self._changed.notify_all()

    def _done_claiming(self) -> bool:
        return self.stopping.is_set() and (self._release_now.is_set() or not self.waiting)

    def _run(self, claimed: Claimed) -> dict[str, Any] | None:
        """Run one job; its report, or None when there is nothing to report."""
        if claimed.released.is_set() or claimed.stale.is_set():
            return None  # given back or aborted before it started
        try:
            python = sys.executable
            if claimed.environment is not None:
                python = self.environments.python(claimed.environment)
            prepared = prepare(
                claimed, self.scripts, self.folders, self.config.server, self.base_env, python
            )
            claimed.workdir = prepared.workdir
            claimed.log = LogPump(prepared.log)
            if self.slurm is not None:
                outcome = runner.run(claimed, prepared, None, None, self.slurm)
            else:
                forkserver = self._live_forkserver(python)
                outcome = runner.run(claimed, prepared, forkserver, self.children)
            claimed.clean = outcome.clean
        except Unreachable as exc:
            # The script could not be fetched: not the job's fault, another try may work.
            log.warning("job %s: %s; giving it back", claimed.serial, exc.message)
            self._release(claimed)
            return None
        except GiveBack as exc:
            log.warning("job %s: %s; giving it back", claimed.serial, exc)
            self._release(claimed)
            return None
        except EnvironmentFailed as exc:
            # Not the job's fault: the server now knows the environment failed here, and
            # another worker may run the job.
            log.warning("job %s: %s; giving it back", claimed.serial, exc.message)
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

    def _live_forkserver(self, python: str) -> ForkServer | None:
        """The fork server of ``python`` (started at its first job, a new one if it has
        died: its jobs were given back); None when jobs start as plain subprocesses."""
        if not self.config.fast_start:
            return None
        with self._forkserver_lock:
            server = self.forkservers.get(python)
            if (server is not None and server.alive) or self.stopping.is_set():
                return server
            if server is not None:
                log.warning("the fork server of %s stopped; starting a new one", python)
                server.close()
            server = self.forkservers[python] = ForkServer(
                COMPAT_DIR, python=python, learn=python != sys.executable
            )
            return server

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

    # -- environments an admin asked for ------------------------------------------------------

    def _install_requested(self, spec: dict[str, Any]) -> None:
        """Make the environment an admin asked for, in a thread of its own (one per key)."""
        key = str(spec.get("key"))
        with self._lock:
            if key in self._installing:
                return
            self._installing.add(key)
        threading.Thread(
            target=self._install, args=(spec,), name=f"install-{key}", daemon=True
        ).start()

    def _install(self, spec: dict[str, Any]) -> None:
        try:
            self.environments.make(spec)
        except EnvironmentFailed as exc:
            log.error("%s (asked for by an admin)", exc.message)
        except Unreachable as exc:
            log.warning("environment %s not made: %s", spec.get("key"), exc)
        except Exception:
            log.exception("environment %s could not be made", spec.get("key"))
        finally:
            with self._lock:
                self._installing.discard(str(spec.get("key")))

    # -- cleaning ----------------------------------------------------------------------------

    def _clean_loop(self) -> None:
        """Delete the working folders of jobs that are not Failed (Done, given back,
        dropped) and serve no other job, off the jobs' path."""
        while not self._finished:
            time.sleep(0.5)
            self.folders.empty_trash()
