"""The tables. Only the storage layer imports this module."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Sort order keys compare by bytes on every backend (PostgreSQL's default collation may not).
SortKey = String(200).with_variant(String(200, collation="C"), "postgresql")


class Timestamp(TypeDecorator[datetime]):
    """A UTC timestamp that comes back timezone-aware from SQLite too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


settings = Table(
    "settings",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

task_types = Table(
    "task_types",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(50), nullable=False),
    Column("version", String(50), nullable=False),
    Column("version_key", String(100), nullable=False),  # zero-padded: orders versions
    Column("kind", String(20), nullable=False),
    Column("display_name", Text, nullable=False, default=""),
    Column("summary", Text, nullable=False, default=""),
    Column("author", Text, nullable=False, default=""),
    Column("entry_point", Text, nullable=False),
    Column("timeout_seconds", Float, nullable=True),
    Column("jobs_per_process", Integer, nullable=False, default=1, server_default="1"),
    Column("retries", Integer, nullable=False, default=0, server_default="0"),
    Column("resources", JSON, nullable=False, default=dict, server_default="{}"),
    Column("dependencies", JSON, nullable=False),
    Column("interface", JSON, nullable=False),
    Column("path", Text, nullable=False),
    Column("installed_at", Timestamp(), nullable=False),
    UniqueConstraint("name", "version"),
)

# Dependency packages (XFP-DEP1.0) as imported: every version of every name. Their files are
# kept in the data directory (``path``); workers fetch them to install them.
dependency_packages = Table(
    "dependency_packages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False),
    Column("version", String(50), nullable=False),
    Column("version_key", String(100), nullable=False),  # zero-padded: orders versions
    Column("display_name", Text, nullable=False, default=""),
    Column("summary", Text, nullable=False, default=""),
    Column("install", Text, nullable=True),  # null: a "virtual marker", nothing to install
    Column("dependencies", JSON, nullable=False),  # [{"name", "version"}]
    Column("author", JSON, nullable=False),  # {"name", "email", "website"}
    Column("metadata", JSON, nullable=False),  # the package's metadata.json as imported
    Column("path", Text, nullable=False),  # the folder holding the package's files
    Column("imported_at", Timestamp(), nullable=False),
    UniqueConstraint("name", "version"),
)

workflows = Table(
    "workflows",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("state", String(20), nullable=False),
    Column("locked", Boolean, nullable=False, default=False),
    Column("remarks", Text, nullable=False, default=""),
    Column("created_at", Timestamp(), nullable=False),
    Column("updated_at", Timestamp(), nullable=False),
    # Raised by every change to the workflow's tasks: servers cache the task list by it.
    Column("tasks_version", Integer, nullable=False, default=0, server_default="0"),
    # What the workflow package it was imported from says about it, written back on export:
    # {"version", "display_name", "summary", "author", "dependencies", "documentation":
    # {"description" | "citation_cff" | "readme": {"filename", "text"} or null}}; null for a
    # workflow made in the editor.
    Column("package", JSON, nullable=True),
    # The user who made it (docs/users.md); it is shared with others by workflow_shares.
    Column("owner_id", Integer, nullable=True),
    # Where the editor's workflow graph draws each task: {"positions": {task: {"x", "y"}}};
    # null until one is saved (the graph then lays the tasks out in layers).
    Column("layout", JSON, nullable=True),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("workflow_id", ForeignKey("workflows.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("position", Integer, nullable=False),
    Column("task_type_id", ForeignKey("task_types.id"), nullable=False),
    Column("inputs", JSON, nullable=False),  # [{"key", "source": {"mode", ...}}]
    Column("spawned_by_task_id", ForeignKey("tasks.id"), nullable=True),
    Column("spawn_key", String(200), nullable=True),
    Column("created_at", Timestamp(), nullable=False),
    UniqueConstraint("workflow_id", "name"),
    UniqueConstraint("spawned_by_task_id", "spawn_key"),
)

entities = Table(
    "entities",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("uuid", String(64), nullable=False, unique=True),
    Column("type", String(50), nullable=False),
    Column("name", Text, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("workflow_id", ForeignKey("workflows.id", ondelete="CASCADE"), nullable=False),
    Column("name", Text, nullable=False),
    Column("entity_id", ForeignKey("entities.id"), nullable=True),
    Column("sort_order", SortKey, nullable=False),
    Column("priority", String(10), nullable=False),
    Column("obsolete", Boolean, nullable=False, default=False),
    Column("created_at", Timestamp(), nullable=False),
    # The workflow's own run, holding its reduce jobs (one per reduce task); never listed.
    Column("study", Boolean, nullable=False, default=False, server_default=false()),
    Index("ix_runs_workflow_sort", "workflow_id", "sort_order"),
    # The runs table's pages in sort order and by name: with every column that a page's
    # filters and orders read, a page and its count read the index alone (migration 0009).
    Index("ix_runs_live_sort", "workflow_id", "obsolete", "study", "sort_order", "id", "name"),
    Index("ix_runs_live_name", "workflow_id", "obsolete", "study", "name", "sort_order", "id"),
    Index(
        "uq_runs_study",
        "workflow_id",
        unique=True,
        sqlite_where=text("study"),
        postgresql_where=text("study"),
    ),
    # The name filter (ILIKE '%text%') from trigrams: PostgreSQL with pg_trgm (migration
    # 0022, which leaves it out where the extension cannot be installed).
    Index(
        "ix_runs_name_trgm",
        "name",
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    ).ddl_if(dialect="postgresql"),
)

workers = Table(
    "workers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("provides", JSON, nullable=False),
    Column("max_jobs", Integer, nullable=False),
    Column("version", String(50), nullable=False, default=""),
    Column("last_seen", Timestamp(), nullable=True),
    # An admin's limit on its concurrent jobs (below what it registered); null: no limit.
    Column("max_jobs_limit", Integer, nullable=True),
    # The worker installs dependency packages when a job needs them (it registered so), and
    # an admin lets it (docs/workers.md).
    Column("installs", Boolean, nullable=False, default=False),
    Column("installs_allowed", Boolean, nullable=False, default=True),
)

# The environments a worker made (Ready), is making (Installing) or failed to make (Failed)
# for a set of dependency packages (``key``: runyard.environments.environment_key), each with
# its install log. A worker claims no job whose environment failed on it.
worker_environments = Table(
    "worker_environments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("worker_id", ForeignKey("workers.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(64), nullable=False),
    Column("packages", JSON, nullable=False),  # [{"name", "version", "install"}], in order
    Column("state", String(20), nullable=False),
    Column("log", Text, nullable=False, default=""),
    Column("updated_at", Timestamp(), nullable=False),
    UniqueConstraint("worker_id", "key"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("serial", Integer, primary_key=True, autoincrement=True),
    Column("workflow_id", ForeignKey("workflows.id", ondelete="CASCADE"), nullable=False),
    Column("run_id", ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("task_id", ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    Column("task_type_id", ForeignKey("task_types.id"), nullable=False),
    Column("state", String(20), nullable=False),
    Column("inputs", JSON, nullable=False),
    Column("outputs", JSON, nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("error", Text, nullable=False, default=""),
    Column("log", Text, nullable=False, default=""),
    Column("attempt", Integer, nullable=False, default=0),
    Column("worker_id", ForeignKey("workers.id"), nullable=True),
    Column("lease_id", String(64), nullable=True),
    Column("lease_expires_at", Timestamp(), nullable=True),
    Column("created_at", Timestamp(), nullable=False),
    Column("started_at", Timestamp(), nullable=True),
    # When the worker said the job's script started (null while the job is only claimed).
    Column("script_started_at", Timestamp(), nullable=True),
    Column("finished_at", Timestamp(), nullable=True),
    Column("workdir", Text, nullable=False, default=""),  # kept on the worker after a failure
    Column("progress", JSON, nullable=True),  # {"fraction": 0..1, "message": str}
    # A spawned job: the job that spawned it, and the key of that spawn (a SHA-256 of what
    # was spawned), so that a retried spawning job gets its jobs back instead of new ones.
    Column("spawned_by_job", Integer, nullable=True),
    Column("spawn_key", String(64), nullable=True),
    # Where the job stands in the claim order: a rank ("0" a high priority run, "1" a
    # normal one, "2" a paused one) and its run's sort order, set when the job is made and
    # again when its run's priority changes (store.runs: queue_order, requeue), so that a
    # claim reads the Queued jobs of runs not paused in order from an index instead of
    # sorting them all.
    Column("queue_order", SortKey, nullable=True),
    # At most one live job per (task, run): retries and races cannot create two.
    Index(
        "uq_jobs_live_task_run",
        "task_id",
        "run_id",
        unique=True,
        sqlite_where=text("state <> 'Obsolete'"),
        postgresql_where=text("state <> 'Obsolete'"),
    ),
    Index("uq_jobs_spawned_by_job", "spawned_by_job", "spawn_key", unique=True),
    Index("ix_jobs_state", "state", "workflow_id"),
    Index(
        "ix_jobs_queue",
        "queue_order",
        "serial",
        sqlite_where=text("state = 'Queued'"),
        postgresql_where=text("state = 'Queued'"),
    ),
    # A run's jobs, and whether it has one in a state (the runs table's state filter).
    Index("ix_jobs_run_state", "run_id", "state"),
    # The runs of a workflow that have a job in a state, counted from this index alone.
    Index("ix_jobs_workflow_state_run", "workflow_id", "state", "run_id"),
    # A serial reserved for a spawning job (serial_reservations) is never given to another
    # job: SQLite counts serials in sqlite_sequence, as PostgreSQL's sequence does.
    sqlite_autoincrement=True,
)

# Serials reserved by a spawning job for the jobs it will spawn (each range first..last), so
# that a script reads a spawned job's serial before the job is sent (docs/spawning.md).
serial_reservations = Table(
    "serial_reservations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_serial", Integer, nullable=False),
    Column("first", Integer, nullable=False),
    Column("last", Integer, nullable=False),
    Index("ix_serial_reservations_job_serial", "job_serial"),
)

# A workflow's jobs by task and state, and its runs (task_id 0: "runs", "obsolete runs",
# "runs changed", "jobs made"), kept by triggers (migration 0021): on SQLite in ``counts``, on
# PostgreSQL appended to ``count_changes`` and folded into ``counts`` by the server; a
# reading adds both (runyard.store.counts).
counts = Table(
    "counts",
    metadata,
    Column("workflow_id", Integer, primary_key=True),
    Column("task_id", Integer, primary_key=True),
    Column("state", String(20), primary_key=True),
    Column("n", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

# How many jobs of each run are in each state (rows of 0 are deleted), kept by the same
# triggers (migration 0023): a run enters a state with its first job in it and leaves it
# with its last, which keeps the counts of runs with a job in a state (task_id -1 in
# ``counts``) for the runs table's state filter. On PostgreSQL the fold keeps it.
run_states = Table(
    "run_states",
    metadata,
    Column("run_id", Integer, primary_key=True),
    Column("state", String(20), primary_key=True),
    Column("n", BigInteger, nullable=False),
    sqlite_with_rowid=False,
)

count_changes = Table(
    "count_changes",
    metadata,
    Column(
        "id",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("workflow_id", Integer, nullable=False),
    Column("task_id", Integer, nullable=False),
    Column("state", String(20), nullable=False),
    Column("change", BigInteger, nullable=False),
    # The job's run, for a change of jobs (migration 0023): run_states is folded from them.
    Column("run_id", Integer, nullable=True),
    Index("ix_count_changes_workflow", "workflow_id"),
)

files = Table(
    "files",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("filename", Text, nullable=False),
    Column("job_serial", Integer, nullable=True),  # the job that uploaded it
    Column("created_at", Timestamp(), nullable=False),
    Column("uploaded_by", String(100), nullable=True),  # the user, for a file not from a job
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("kind", String(20), nullable=False),  # user | worker | session
    Column("name", String(200), nullable=False),  # the user or worker; a session: user:NAME
    Column("created_at", Timestamp(), nullable=False),
    Column("revoked_at", Timestamp(), nullable=True),
    Column("label", String(200), nullable=True),  # what a user named a personal token
    # When it was last used (migration 0024): noted by each server process in memory and
    # written every TOKEN_USE_SECONDS (runyard.operations.auth); null: never since then.
    Column("last_used_at", Timestamp(), nullable=True),
)

userdata_mappings = Table(
    "userdata_mappings",
    metadata,
    Column("root", String(500), primary_key=True),  # a virtual folder path: /Scans/
    Column("folder", Text, nullable=False),  # the real folder on the server: /data/scans
    Column("created_at", Timestamp(), nullable=False),
    Column("groups", JSON, nullable=True),  # the groups that may use it; null: every user
)

activity_log = Table(
    "activity_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", Timestamp(), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False),
    Column("level", String(20), nullable=False, default="info"),
    Column("workflow_id", Integer, nullable=True),
    Column("job_serial", Integer, nullable=True),
    Column("message", Text, nullable=False),
    Column("address", String(100), nullable=True),  # the caller's network address
    Index("ix_activity_log_at", "at"),
    Index("ix_activity_log_job", "job_serial"),
)


# -- users, groups and sharing (docs/users.md) -------------------------------------------

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("password_hash", Text, nullable=True),  # argon2; null: logs in by token only
    Column("created_at", Timestamp(), nullable=False),
    Column("disabled_at", Timestamp(), nullable=True),
)

groups = Table(
    "groups",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("created_at", Timestamp(), nullable=False),
)

group_members = Table(
    "group_members",
    metadata,
    Column("group_id", Integer, ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
)

workflow_shares = Table(
    "workflow_shares",
    metadata,
    Column("workflow_id", Integer, primary_key=True),
    Column("grantee_kind", String(10), primary_key=True),  # user | group
    Column("grantee_id", Integer, primary_key=True),
    Column("level", String(10), nullable=False),  # view | operate | edit
    Column("created_at", Timestamp(), nullable=False),
)

# Calls made idempotent by the caller's Idempotency-Key header (docs/http-api.md): the first
# call's outcome (the source job of the run it created), answered again to a repeat of the
# same request by the same caller; kept a day (``runyard.store.idempotency``).
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("caller", String(120), primary_key=True),  # kind:name of the token's principal
    Column("key", String(255), primary_key=True),
    Column("request", String(64), nullable=False),  # SHA-256 of the call's route and body
    Column("job_serial", Integer, nullable=False),
    Column("created_at", Timestamp(), nullable=False),
    Index("ix_idempotency_keys_created_at", "created_at"),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account", String(100), nullable=False),
    Column("address", String(100), nullable=False),
    Column("at", Timestamp(), nullable=False),
    Index("ix_login_failures_at", "at"),
)
