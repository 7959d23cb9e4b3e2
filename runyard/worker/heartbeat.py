"""Heartbeats: one request per ``heartbeat_seconds`` renews the leases of all held jobs
(claimed, running, finished and not reported yet) and carries their scripts' new output, the
live job log. A lease the server refuses (the job was aborted, or given to another worker)
kills the job's script.

A finished job's report carries the rest of its log (``_log_rests``), read only once the
heartbeat under way has been answered: heartbeats read no more of a finished job's log, so
every line goes to the server once and in order.
"""

from __future__ import annotations

import logging
from typing import Any

from runyard.client import Unreachable
from runyard.worker import runner
from runyard.worker.config import WorkerConfig
from runyard.worker.held import HeldJobs
from runyard.worker.runner import Claimed

log = logging.getLogger("runyard.worker")


class Heartbeats(HeldJobs):
    """The heartbeat thread of ``Worker`` (``_heartbeat_loop``)."""

    def __init__(self, config: WorkerConfig) -> None:
        super().__init__(config)
        self._beating = False  # a heartbeat request is on its way (under _lock)

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
                    item = beat(claimed)
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
                        lost(claimed)
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


def beat(claimed: Claimed) -> dict[str, Any] | None:
    """The heartbeat of a held job with its new output; None once it is given back. The
    caller holds ``claimed.reporting`` while this reads."""
    if claimed.released.is_set():
        return None
    if claimed.finished:  # reported (or about to be): only keep its lease alive
        return {"serial": claimed.serial, "lease": claimed.lease, "log": ""}
    text = claimed.log.read() if claimed.log else ""
    return {"serial": claimed.serial, "lease": claimed.lease, "log": text}


def lost(claimed: Claimed) -> None:
    """The server refused the job's lease (aborted, or given to another worker): stop it."""
    claimed.stale.set()
    if claimed.process is not None and not claimed.finished:
        runner.kill_group(claimed.process)
