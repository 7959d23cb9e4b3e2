"""The operations layer: checks state and calls the store. Edges (HTTP, CLI) call only this."""

from __future__ import annotations

from typing import Any

from runyard.operations.access import AccessManager
from runyard.operations.auth import AuthManager, Principal
from runyard.operations.base import Clock, Notifier, TaskLists, utcnow
from runyard.operations.dependency_packages import DependencyPackageManager
from runyard.operations.environments import EnvironmentManager
from runyard.operations.files import FileManager
from runyard.operations.jobs import JobManager
from runyard.operations.leases import LeaseManager
from runyard.operations.output_zips import OutputZipManager
from runyard.operations.purge import PurgeManager
from runyard.operations.results import ResultManager
from runyard.operations.runs import RunManager
from runyard.operations.sessions import SessionManager
from runyard.operations.spawns import SpawnManager
from runyard.operations.study_table import StudyTableManager
from runyard.operations.task_types import TaskTypeManager
from runyard.operations.timeline import TimelineManager
from runyard.operations.tokens import TokenManager
from runyard.operations.userdata import UserDataManager
from runyard.operations.users import UserManager
from runyard.operations.views import ViewManager
from runyard.operations.workers import WorkerManager
from runyard.operations.workflows import WorkflowManager
from runyard.settings import Settings
from runyard.store import Store, private
from runyard.store import workers as worker_rows


class Runyard:
    """One Runyard installation: its store and the managers of each noun."""

    def __init__(
        self, settings: Settings, *, store: Store | None = None, now: Clock = utcnow
    ) -> None:
        self.settings = settings
        self.store = store or Store(settings.effective_database_url)
        # Wakes waiting claims and live views: in this process, and on PostgreSQL in every
        # server process on the database once started (the server's lifespan starts it).
        self.changed = Notifier(self.store.notifications())
        args = (self.store, settings)
        # What every manager shares: the clock, the notifier of claims, the task lists.
        shared: dict[str, Any] = {"now": now, "changed": self.changed, "task_lists": TaskLists()}
        self.auth = AuthManager(*args, **shared)
        self.dependency_packages = DependencyPackageManager(*args, **shared)
        self.files = FileManager(*args, **shared)
        self.jobs = JobManager(*args, **shared)
        self.environments = EnvironmentManager(*args, **shared)
        self.leases = LeaseManager(*args, environments=self.environments, **shared)
        self.runs = RunManager(*args, **shared)
        self.spawns = SpawnManager(*args, **shared)
        self.task_types = TaskTypeManager(*args, **shared)
        self.userdata = UserDataManager(
            *args, secret=self.auth.secret, now=now, changed=self.changed
        )
        self.workers = WorkerManager(*args, leases=self.leases, **shared)
        self.workflows = WorkflowManager(*args, **shared)
        self.users = UserManager(*args, auth=self.auth, **shared)
        self.tokens = TokenManager(*args, auth=self.auth, **shared)
        self.sessions = SessionManager(*args, auth=self.auth, users=self.users, **shared)
        self.access = AccessManager(*args, **shared)
        self.timeline = TimelineManager(*args, **shared)
        self.views = ViewManager(*args, environments=self.environments, **shared)
        self.purge = PurgeManager(*args, files=self.files, **shared)
        self.results = ResultManager(
            *args, files=self.files, userdata=self.userdata, access=self.access, **shared
        )
        self.study_table = StudyTableManager(*args, **shared)
        self.output_zips = OutputZipManager(*args, files=self.files, access=self.access, **shared)

    def open(self) -> Runyard:
        """Create the data directory and bring the database schema up to date, both
        owner-only (docs/security.md); read or make the secret."""
        private.private_dir(self.settings.data_dir)
        if self.settings.sqlite_path is not None:
            private.private_database(self.settings.sqlite_path)
        self.store.migrate()
        self.auth.load_secret()
        return self

    def activity(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest entries of the activity log."""
        with self.store.read() as conn:
            return worker_rows.recent_activity(conn, limit)

    def close(self) -> None:
        self.changed.stop()
        self.store.dispose()


__all__ = ["Principal", "Runyard"]
