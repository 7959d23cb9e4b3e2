"""What every operations class shares: the store, the settings and the clock."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from runyard.errors import NotFound
from runyard.models import Task, Workflow
from runyard.settings import Settings
from runyard.store import Store
from runyard.store import workers as worker_rows
from runyard.store import workflows as workflow_rows
from runyard.taskgraph import TaskGraph

if TYPE_CHECKING:
    from runyard.store.notifications import Channel

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class Notifier:
    """Wakes long-polling claims (and live views of the runs table) when jobs may have
    become claimable. Always in this process; with a ``channel`` (PostgreSQL's
    LISTEN/NOTIFY, ``store.notifications``), once started, in every server process on the
    database too: ``notify`` after a commit here reaches their waiters as well."""

    def __init__(self, channel: Channel | None = None) -> None:
        self._condition = threading.Condition()
        self._channel = channel
        self.version = 0
        self.closed = False
        # Called when another server process revoked tokens (forget what was looked up).
        self.on_forget: list[Callable[[], None]] = []

    def start(self) -> None:
        """Hear the other server processes' notifications and send them this one's (from
        now on; a serving process starts it, nothing else needs to)."""
        if self._channel is not None:
            self._channel.start(self._wake, self._forget)

    def forget_elsewhere(self) -> None:
        """Tokens were revoked (committed): the other server processes forget the tokens
        they looked up (PostgreSQL; nothing to tell on SQLite)."""
        if self._channel is not None:
            self._channel.send_forget()

    def _forget(self) -> None:
        for listener in self.on_forget:
            listener()

    def listening(self, timeout: float = 0.0) -> bool:
        """Whether the other server processes' notifications are heard (waiting up to
        ``timeout`` seconds for it); never in-process."""
        return self._channel is not None and self._channel.listening.wait(timeout)

    def stop(self) -> None:
        """No more notifications to or from other processes (what is due is sent first)."""
        if self._channel is not None:
            self._channel.stop()

    def notify(self) -> None:
        self._wake()
        if self._channel is not None:
            self._channel.send()

    def _wake(self) -> None:
        with self._condition:
            self.version += 1
            self._condition.notify_all()

    def close(self) -> None:
        """The server is stopping: end every wait now, and all later ones at once."""
        self.closed = True
        self._wake()

    def wait(self, seen: int, timeout: float) -> None:
        """Wait until a notification after version ``seen``, or ``timeout`` seconds."""
        with self._condition:
            self._condition.wait_for(lambda: self.version != seen or self.closed, timeout)


class TaskLists:
    """The task graphs of workflows, read and parsed once per ``tasks_version`` (every
    change to a workflow's tasks raises it, in any server process sharing the database)."""

    def __init__(self) -> None:
        self._graphs: dict[int, tuple[int, TaskGraph]] = {}
        self._lock = threading.Lock()

    def get(self, conn: Connection, workflow_id: int) -> list[Task]:
        return self.graph(conn, workflow_id).tasks

    def graph(self, conn: Connection, workflow_id: int) -> TaskGraph:
        version = workflow_rows.tasks_version(conn, workflow_id)
        with self._lock:
            cached = self._graphs.get(workflow_id)
        if cached is not None and cached[0] == version:
            return cached[1]
        graph = TaskGraph.of(workflow_rows.list_tasks(conn, workflow_id))
        if version is not None:
            with self._lock:
                self._graphs[workflow_id] = (version, graph)
        return graph


# The network address of the HTTP request being served (set by the server for each request):
# the activity log records it with every action.
request_address: ContextVar[str | None] = ContextVar("request_address", default=None)


class Operations:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        now: Clock = utcnow,
        changed: Notifier | None = None,
        task_lists: TaskLists | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.now = now
        self.changed = changed or Notifier()
        self.task_lists = task_lists or TaskLists()

    def _tasks(self, conn: Connection, workflow_id: int) -> list[Task]:
        """The workflow's tasks in order (cached; never modify the list)."""
        return self.task_lists.get(conn, workflow_id)

    def _graph(self, conn: Connection, workflow_id: int) -> TaskGraph:
        """The workflow's task graph (cached)."""
        return self.task_lists.graph(conn, workflow_id)

    @contextmanager
    def _write_and_notify(self) -> Iterator[Connection]:
        """A write transaction after whose commit waiting claims look again."""
        with self.store.write() as conn:
            yield conn
        self.changed.notify()

    def _workflow(self, conn: Connection, name: str) -> Workflow:
        workflow = workflow_rows.get_workflow(conn, name=name)
        if workflow is None:
            known = [w.name for w in workflow_rows.list_workflows(conn)]
            raise NotFound(
                f"no workflow named {name!r}"
                + (f"; workflows: {', '.join(known)}" if known else "; none is imported yet"),
                workflow=name,
            )
        return workflow

    @staticmethod
    def _task(tasks: list[Task], name: str, workflow: Workflow) -> Task:
        for task in tasks:
            if task.name == name:
                return task
        raise NotFound(
            f"workflow {workflow.name!r} has no task named {name!r}; "
            f"its tasks: {', '.join(t.name for t in tasks) or '(none)'}",
            workflow=workflow.name,
            task=name,
        )

    def _log(
        self,
        conn: Connection,
        actor: str,
        action: str,
        message: str,
        *,
        workflow_id: int | None = None,
        job_serial: int | None = None,
        level: str = "info",
    ) -> None:
        worker_rows.log_activity(
            conn,
            actor=actor,
            action=action,
            message=message,
            now=self.now(),
            level=level,
            workflow_id=workflow_id,
            job_serial=job_serial,
            address=request_address.get(),
        )
