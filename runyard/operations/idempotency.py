"""Idempotency keys of calls that create something (``Idempotency-Key`` header): what makes a
call sent twice (its answer was lost on the way) do its work once: the key's checks, the
fingerprint of a request, and ``IdempotentRuns.new_run_once`` (a base of ``RunManager``)."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from runyard.errors import Conflict, InvalidInput
from runyard.models import Entity, Job, Workflow
from runyard.operations.giveback import GivingBack
from runyard.states import WorkflowState
from runyard.store import idempotency as key_rows
from runyard.store import jobs as job_rows

MAX_KEY = 255
KEPT_FOR = timedelta(hours=24)  # a key answers repeats for a day, then may be used anew


def check_key(key: str) -> str:
    """The key, or an error saying what a key may be: 1 to 255 visible ASCII characters."""
    if not 0 < len(key) <= MAX_KEY or not all(" " < c <= "~" for c in key):
        raise InvalidInput(
            f"the Idempotency-Key header must be 1 to {MAX_KEY} visible ASCII characters "
            f"(a UUID, say); got {key[:40]!r}{'...' if len(key) > 40 else ''} "
            f"({len(key)} characters)",
            header="Idempotency-Key",
        )
    return key


def fingerprint(route: str, **request: Any) -> str:
    """The SHA-256 of a request (its route and values, as canonical JSON): a repeat with the
    same key must be the same request."""
    text = json.dumps([route, request], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def reused(key: str) -> InvalidInput:
    return InvalidInput(
        f"the Idempotency-Key {key!r} was used before for a different request; send a new "
        "key with each new request (and the same key only when sending the same request "
        "again)",
        header="Idempotency-Key",
    )


class IdempotentRuns(GivingBack):
    """Run creation with an idempotency key."""

    def new_run_once(
        self,
        key: str,
        caller: str,
        workflow_name: str,
        task_name: str,
        *,
        outputs: dict[str, Any] | None = None,
        name: str | None = None,
        entity: Entity | None = None,
        actor: str = "system",
    ) -> Job:
        """``new_run`` with an idempotency ``key`` of ``caller``: the first call creates the
        run and remembers its source job with the key, in one transaction; the same request
        again (within a day) is answered that job as it is now, and another request with
        the key is refused."""
        check_key(key)
        request = fingerprint(
            "new_run",
            workflow=workflow_name,
            task=task_name,
            outputs=outputs,
            name=name,
            entity=entity,
        )
        for last_try in (False, True):
            try:
                job, created_in = self._keyed_run(
                    key, caller, request, (workflow_name, task_name, outputs, name, entity, actor)
                )
            except IntegrityError:  # PostgreSQL: the same key at once; the winner's run
                if last_try:
                    raise
                continue
            if created_in is not None and created_in.state == WorkflowState.STARTED:
                self.changed.notify()
            return job
        raise AssertionError("unreachable")

    def _keyed_run(
        self, key: str, caller: str, request: str, run: tuple[Any, ...]
    ) -> tuple[Job, Workflow | None]:
        """The job the key answers (and no workflow), or a new run's job and its workflow
        (``run``: ``new_run``'s arguments, in order)."""
        workflow_name, task_name, outputs, name, entity, actor = run
        now = self.now()
        with self.store.write() as conn:
            found = key_rows.find(conn, caller, key)
            if found is not None:
                return self._answered(conn, key, request, *found), None
            key_rows.forget_before(conn, now - KEPT_FOR)
            job, workflow = self._new_run(
                conn,
                workflow_name,
                task_name,
                outputs=outputs,
                name=name,
                entity=entity,
                actor=actor,
            )
            key_rows.remember(conn, caller, key, request, job.serial, now)
        return job, workflow

    def _answered(self, conn: Connection, key: str, request: str, first: str, serial: int) -> Job:
        if request != first:
            raise reused(key)
        job = job_rows.get_job(conn, serial)
        if job is None:
            raise Conflict(
                f"the run created with Idempotency-Key {key!r} has been purged since; send a "
                "new key to create a run again",
                header="Idempotency-Key",
            )
        return job
