"""Claims and reports: how a worker gets jobs and hands back their results.

- the **reporter** (``_report_loop``) sends every queued result in one request, which also
  claims as many new jobs as the worker has room for: while a slot runs one job, the next is
  already here, so the round trips to the server are not on the jobs' path;
- the **claimer** (``_claim_loop``) long-polls the server for work when the worker has room and
  nothing to report, and ends in ``--burst`` mode once nothing is left.

A worker has room for one job per free slot, and one ahead for each slot whose job started
just now (``_room``).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from runyard.client import RemoteError, Unreachable
from runyard.worker.claimed import Claimed
from runyard.worker.heartbeat import Heartbeats

log = logging.getLogger("runyard.worker")
MAX_CLAIM = 256  # the most jobs the server hands out per claim (ClaimRequest.max)


class Claiming(Heartbeats):
    """The claimer (run by ``Worker.run``'s own thread) and the reporter thread of
    ``Worker``."""

    # -- claiming --------------------------------------------------------------------------

    def _room(self) -> int:
        """How many more jobs to claim (called under _lock): one per free slot, and one
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

    def _claimer_may_claim(self) -> bool:
        """What the claimer waits for (under _lock): room, and no results waiting or being
        reported (that report claims)."""
        return self.stopping.is_set() or (
            self._room() > 0 and not self.results and not self._reports_in_flight
        )

    def _claim_loop(self) -> None:
        while not self.stopping.is_set():
            with self._changed:
                self._changed.wait_for(self._claimer_may_claim, timeout=1.0)
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
            if not self._refuses_token(exc):
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
        if items:
            with self._lock:
                for item in items:
                    self.held[item.serial] = item
                    self.waiting.append(item)
                self._has_work.notify(len(items))
        if self.stopping.is_set():
            self._release_waiting()

    # -- reporting ---------------------------------------------------------------------------

    def _report_loop(self) -> None:
        while True:
            with self._lock:
                self._has_results.wait_for(lambda: bool(self.results) or self._all_done())
                if not self.results:
                    return
                batch, self.results = self.results, []
                room = self._room() + len(batch)
                self._reports_in_flight += 1
            try:
                self._report(batch, room)
            finally:
                with self._lock:
                    self._reports_in_flight -= 1
                    if self._claimer_may_claim():
                        self._changed.notify_all()

    def _all_done(self) -> bool:
        """Stopping, and no slot will produce another result."""
        return self.stopping.is_set() and self._busy_slots == 0 and not self.waiting

    def _report(self, batch: list[tuple[Claimed, dict[str, Any]]], room: int) -> None:
        """Report finished jobs (with the rest of their logs), drop them, and hold the jobs
        the same request claimed."""
        self._log_rests(batch)
        body = {
            "worker": self.config.name,
            "results": [item for _, item in batch],
            "claim": 0 if self.stopping.is_set() else min(room, MAX_CLAIM),
        }
        answer = self._send_report(body, len(batch))
        done = self._drop_reported(batch, answer)
        self._take(answer.get("claimed", []))
        for workdir in done:
            self.folders.recycle(workdir)

    def _send_report(self, body: dict[str, Any], count: int) -> dict[str, Any]:
        """The server's answer to a report of ``count`` results; ``{}`` if it refused it or
        the worker was told to stop before it could be delivered."""
        delay = 1.0
        while True:
            try:
                answer: dict[str, Any] = self.client.post("/api/workers/report", body)
                return answer
            except Unreachable as exc:
                log.warning("%s; reporting again in %.0f s", exc.message, delay)
            except RemoteError as exc:
                if self._refuses_token(exc):
                    return {}
                if exc.status_code < 500:
                    log.error("the server refused a report (%d results): %s", count, exc.message)
                    return {}
                log.warning("the server failed a report: %s; reporting again", exc.message)
            # The heartbeat keeps these jobs' leases alive: retry until the server answers
            # (or refuses the lease), unless the worker is told to stop at once.
            if self._release_now.wait(delay):
                log.error("%d result(s) not reported; their leases will expire", count)
                return {}
            delay = min(2 * delay, 10.0)
            body["claim"] = 0 if self.stopping.is_set() else body["claim"]

    def _drop_reported(
        self, batch: list[tuple[Claimed, dict[str, Any]]], answer: dict[str, Any]
    ) -> list[Path]:
        """The reported jobs are no longer held; their working folders go, except a Failed
        job's. The folders that may serve other jobs (``Claimed.clean``), to recycle."""
        answers = {a["serial"]: a for a in answer.get("results", [])}
        recycle = []
        with self._lock:
            for claimed, item in batch:
                self.held.pop(claimed.serial, None)
                got = answers.get(claimed.serial, {})
                if "error" in got:
                    log.warning("job %s: %s", claimed.serial, got["error"]["message"])
                # Only a Failed job's folder is kept (for inspection): also when the
                # report was not answered and the job failed here.
                failed = got.get("state") == "Failed" or (not got and not item.get("ok"))
                if failed or claimed.workdir is None:
                    continue
                done = got.get("state") == "Done" or (not got and item.get("ok"))
                if claimed.clean and done:
                    recycle.append(claimed.workdir)
                else:
                    self.folders.discard(claimed.workdir)
        return recycle
