"""Heartbeats: one request per ``heartbeat_seconds`` renews the leases of all held jobs
(claimed, running, finished and not reported yet) and carries their scripts' new output, the
live job log. A lease the server refuses (the job was aborted, or given to another worker)
kills the job's script. A worker without jobs calls every ``IDLE_HEARTBEAT_SECONDS``; the
answer names the environments an admin asked it to make.

A finished job's report carries the rest of its log (``_log_rests``), read only once the
heartbeat under way has been answered: heartbeats read no more of a finished job's log, so
every line goes to the server once and in order.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from runyard.client import RemoteError, Unreachable
from runyard.worker.claimed import Claimed
from runyard.worker.config import WorkerConfig
from runyard.worker.held import HeldJobs
from runyard.worker.processes import kill_group

log = logging.getLogger("runyard.worker")
# How often a worker that holds no job still calls (to hear of environments asked of it).
IDLE_HEARTBEAT_SECONDS = 5.0


class Heartbeats(HeldJobs):
    """The heartbeat thread of ``Worker`` (``_heartbeat_loop``)."""

    def __init__(self, config: WorkerConfig) -> None:
        super().__init__(config)
        self._beating = False  # a heartbeat request is on its way (under _lock)
        # (serial, lease) of the held jobs whose start the server has heard of.
        self._told_started: set[tuple[int, str]] = set()

    def _heartbeat_loop(self) -> None:
        """Every ``heartbeat_seconds``: one request for all held jobs renews their leases and
        sends the scripts' new output."""
        last = time.monotonic()
        while not self._release_now.wait(self.config.heartbeat_seconds):
            if not self.stopping.is_set():
                self._release_waiting(older_than=self.config.give_back_seconds)
            with self._changed:
                held = list(self.held.values())
            if not held and time.monotonic() - last < IDLE_HEARTBEAT_SECONDS:
                continue
            last = time.monotonic()
            try:
                self._beat(held)
            except Unreachable as exc:
                log.warning("heartbeat: %s; trying again", exc.message)
            except RemoteError as exc:
                if not self._refuses_token(exc):
                    log.warning("heartbeat refused: %s; trying again", exc.message)
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
            if held and not beats:
                return
            self._told_started &= {(c.serial, c.lease) for c in held}
            for item in beats:  # a script's start is said once (until the server heard it)
                if (item["serial"], item["lease"]) in self._told_started:
                    item.pop("started", None)
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
            self._told_started |= {(b["serial"], b["lease"]) for b in beats if b.get("started")}
            for claimed in held:
                if claimed.serial in answer["refused"]:
                    with claimed.reporting:
                        lost(claimed)
            for spec in answer.get("install", []):
                self._install_requested(spec)
        finally:
            with self._changed:
                self._beating = False
                self._changed.notify_all()

    def _install_requested(self, spec: dict[str, Any]) -> None:
        """Make the environment an admin asked for (``Worker`` does, in the background)."""

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
    if claimed.log is None:  # claimed (ahead), its script not started yet
        return {"serial": claimed.serial, "lease": claimed.lease, "log": ""}
    text = claimed.log.read()
    return {"serial": claimed.serial, "lease": claimed.lease, "log": text, "started": True}


def lost(claimed: Claimed) -> None:
    """The server refused the job's lease (aborted, or given to another worker): stop it."""
    claimed.stale.set()
    if claimed.process is not None and not claimed.finished:
        kill_group(claimed.process)
