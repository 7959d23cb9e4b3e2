"""``xfworkerutil``: XamFlow's task-script helper, as a thin facade over ``runyard.task``.

    import xfworkerutil

    worker = xfworkerutil.XFWorkerJob()
    value = worker.job["inputs"]["value"]
    table = worker.working_dir.path / "table.csv"
    table.write_text("value\\n%d\\n" % value)
    worker.finish({"table": worker.create_output_csv(table)})   # uploaded: a CSV value

Every name XamFlow documents, and what Runyard chose where it is silent: docs/compat.md.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from runyard import task as runyard_task
from runyard.task import spawn
from runyard.task.workdir import WorkingDirectory

if TYPE_CHECKING:  # imported when first used, as runyard.task does: scripts start faster
    from runyard.client import Client
    from runyard.images import Image


class ActivityLogLevel(StrEnum):
    """Levels of activity log entries (the values are ``runyard.task.ACTIVITY_LEVELS``)."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class XFWorkerArguments:
    """The job's context from the ``XF_*`` variables that the worker sets: ``job_serial``
    (int), ``server_host``, ``server_port`` (a string, as XamFlow has it), ``server_auth``
    (the job token) and ``server_scheme``. Reads ``environ`` if given, else the process
    environment."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.job_serial = _int_variable(env, "XF_JOB_SERIAL")
        self.server_host = _variable(env, "XF_SERVER_HOST")
        self.server_port = str(_int_variable(env, "XF_SERVER_PORT"))
        self.server_scheme = env.get("XF_SERVER_SCHEME") or "http"
        self.server_auth = _variable(env, "XF_SERVER_AUTH")

    @property
    def server_url(self) -> str:
        host = f"[{self.server_host}]" if ":" in self.server_host else self.server_host
        return f"{self.server_scheme}://{host}:{self.server_port}"


def _variable(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    if not value:
        raise runyard_task.NotInAJob(
            f"{name} is not set: this script must be run by a Runyard worker"
        )
    return value


def _int_variable(env: Mapping[str, str], name: str) -> int:
    value = _variable(env, name)
    try:
        return int(value)
    except ValueError:
        raise runyard_task.TaskError(f"{name} must be a whole number; it is {value!r}") from None


@dataclass(frozen=True, kw_only=True)
class ServerConnection:
    """What ``XFWorkerJob.server_connection()`` yields: a client of the server, authenticated
    as the job, for the functions that take a ``connection``."""

    client: Client
    job_serial: int
    reservations: spawn.Reservations = field(default_factory=spawn.Reservations)
    jobs: spawn.JobBatch = None  # type: ignore[assignment]  # spawns not sent yet

    def __post_init__(self) -> None:
        if self.jobs is None:
            batch = spawn.JobBatch(self.client, reservations=self.reservations)
            object.__setattr__(self, "jobs", batch)

    def close(self) -> None:
        """Send the jobs not sent yet."""
        self.jobs.flush()


class TemporaryWorkingDirectory(WorkingDirectory):
    """A fresh folder named ``prefix`` plus random letters, inside ``parent`` (default: the
    current folder, which in a job is the job's working folder): ``path`` (a ``Path``),
    ``create_temp_path(filename)``, ``create_related_path(path, postfix)``,
    ``subdir(name, max_name_len=8)``, ``is_under(path)``, ``remove()``
    (``runyard.task.workdir.WorkingDirectory``). As a ``with`` block it gives ``path`` and
    is removed at the end."""

    def __init__(
        self, prefix: str = "tmp-", *, parent: str | os.PathLike[str] | None = None
    ) -> None:
        super().__init__(WorkingDirectory.create(prefix, parent).path)
        self.name = str(self.path)

    @classmethod
    def of(cls, path: str | os.PathLike[str]) -> TemporaryWorkingDirectory:
        """The existing folder ``path`` as a working directory (the job's own folder:
        ``XFWorkerJob.working_dir``), nothing created."""
        existing = cls.__new__(cls)
        WorkingDirectory.__init__(existing, path)
        existing.name = str(existing.path)
        return existing

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def cleanup(self) -> None:
        self.remove()


class XFWorkerJob:
    """The job this script runs as. ``job`` is a dict with ``serial``, ``inputs`` and
    ``metadata``. Creating it also sends ``logging`` records of level INFO and up to the job
    log (unless the script configured logging before)."""

    def __init__(self) -> None:
        self._job = runyard_task.current_job()
        self.job: dict[str, Any] = {
            "serial": self._job.serial,
            "inputs": self._job.inputs,
            "metadata": self._job.metadata,
        }
        self.working_dir = TemporaryWorkingDirectory.of(self._job.working_dir)
        self._reservations = spawn.Reservations()  # serials of the jobs it spawns
        self._connections: list[ServerConnection] = []  # open ones, for finish to flush
        logging.basicConfig(level=logging.INFO, format="%(levelname)s: %(message)s")

    # -- ending the job ---------------------------------------------------------------------

    def error(self, message: object) -> NoReturn:
        """End the job as Failed with ``message`` (``runyard.task.fail``)."""
        runyard_task.fail(str(message))

    def finish(self, outputs: Mapping[str, Any] | None = None) -> NoReturn:
        """End the job as Done with ``outputs``. A ``Path`` value is uploaded first as a
        ``ForeignFile`` value; an ``omni.Image`` as an ``Image`` value
        (``upload_omni_output``). Spawned jobs not sent yet (``finish`` inside a
        ``server_connection`` block) are sent first."""
        for connection in self._connections:
            connection.close()
        values = {}
        for key, value in (outputs or {}).items():
            if isinstance(value, os.PathLike):
                value = self._upload(key, Path(value), "ForeignFile")
            elif type(value).__module__.startswith("runyard.images"):  # an omni.Image
                value = self.upload_omni_output(value)
            values[key] = value
        runyard_task.finish(values)

    def _upload(self, key: str, path: Path, value_type: str) -> dict[str, Any]:
        path = path if path.is_absolute() else self.working_dir.path / path
        if not path.is_file():
            self.error(f"output {key}: the file {path} does not exist; write it first")
        return self._job.upload(path, value_type=value_type)

    # -- files --------------------------------------------------------------------------------

    def download_input_file(self, param: dict[str, Any]) -> Path:
        """Fetch a file input (a ``ForeignFile`` value of the file store or of User Data)
        into the working folder; its path."""
        return self._job.download(param)

    def create_related_path(self, path: str | os.PathLike[str], postfix: str) -> Path:
        """A new path in the working folder named after ``path``: its last name without its
        last suffix, plus ``postfix``. ``("/x/scan.aim", "_seg.omni")`` -> ``working_dir.path
        / "scan_seg.omni"``; ``("SCAN.ISQ;1", ".omni")`` -> ``"SCAN.omni"``; numbered if
        taken (``WorkingDirectory.create_related_path``)."""
        return self.working_dir.create_related_path(path, postfix)

    def create_output_csv(self, filename: str | os.PathLike[str]) -> dict[str, Any]:
        """Upload the CSV file the script wrote (``filename``: in the working folder, or a
        full path); its ``CSV`` output value."""
        return self._upload("CSV", Path(filename), "CSV")

    def create_output_bitmap(self, filename: str | os.PathLike[str]) -> dict[str, Any]:
        """Upload the picture (PNG, JPEG) the script wrote; its ``Bitmap`` output value."""
        return self._upload("Bitmap", Path(filename), "Bitmap")

    def create_output_contours(
        self, filename: str | os.PathLike[str], image: Image | dict[str, Any]
    ) -> dict[str, Any]:
        """Upload the contours file the script wrote for ``image`` (an ``omni.Image`` or an
        ``Image`` value); its ``Contours`` output value (``CurrentJob.upload_contours``)."""
        path = Path(filename) if Path(filename).is_absolute() else self.working_dir / filename
        if not path.is_file():
            self.error(f"output Contours: the file {path} does not exist; write it first")
        return self._job.upload_contours(path, image)

    def upload_output_csv(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """``create_output_csv`` under Runyard's earlier name."""
        return self.create_output_csv(path)

    @staticmethod
    def create_output_entity(uuid: str, name: str) -> dict[str, Any]:
        """An ``Entity`` value, for outputs and for ``metadata["run_entity"]``."""
        return {"type": "Entity", "uuid": uuid, "name": name}

    # -- messages -----------------------------------------------------------------------------

    def activity_log_message(
        self, title: str, level: ActivityLogLevel | str = ActivityLogLevel.INFO
    ) -> None:
        """Write ``title`` to the activity log."""
        self._job.activity(title, ActivityLogLevel(str(level).lower()).value)

    def clear_error_message(self, *, save: bool = True) -> None:
        """Clear the message shown for this running job (its progress report): now with
        ``save=True``, else with the job's next report to the server (its progress, or its
        end, which replaces the message anyway). Runyard sets a job's error only when it
        ends Failed, so a running job has no other message."""
        if save:
            self._job.progress(None, "")

    # -- the server ---------------------------------------------------------------------------

    @contextmanager
    def server_connection(self) -> Iterator[ServerConnection]:
        """A connection to the server as this job, closed at the end of the ``with`` block."""
        with runyard_task.job_client(self._job.server, self._job.token) as client:
            connection = ServerConnection(
                client=client, job_serial=self._job.serial, reservations=self._reservations
            )
            self._connections.append(connection)
            try:
                yield connection
                connection.close()
            finally:
                self._connections.remove(connection)

    def find_xf_task_types(self, connection: ServerConnection, name: str) -> list[dict[str, Any]]:
        """All installed versions of the task type ``name``, newest first (empty if none)."""
        return spawn.find_task_types(name, client=connection.client)

    def spawn_xf_task_basic(
        self,
        connection: ServerConnection,
        task_type: dict[str, Any],
        name: str,
        spawn_key: str | None = None,
        inputs: Sequence[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """The task ``name`` of ``task_type`` in this job's workflow, created unless this
        job's task spawned one with ``spawn_key`` before (``runyard.task.spawn.spawn_task``)."""
        return spawn.spawn_task(
            task_type, name, spawn_key=spawn_key, inputs=inputs or (), client=connection.client
        )

    def spawn_xf_job_basic(
        self,
        connection: ServerConnection,
        task_type: dict[str, Any],
        task: dict[str, Any],
        outputs: dict[str, Any] | None = None,
        state: str = "Done",
        sort_order: str | None = None,
        metadata: dict[str, Any] | None = None,
        inputs: dict[str, Any] | None = None,
        source_job_serial: int | None = None,
    ) -> Mapping[str, Any]:
        """A job of ``task``: a new run's source job, or a job in the run of
        ``source_job_serial``. Jobs are sent in batches: the job answered is a mapping that
        sends its batch when first read (``job["serial"]``), so what the script reads is
        the server's. ``runyard.task.spawn.JobBatch``."""
        return connection.jobs.add(
            task,
            outputs=outputs,
            state=state,
            sort_order=sort_order,
            metadata=metadata,
            inputs=inputs,
            source_job_serial=source_job_serial,
        )

    def get_existing_job_sort_orders(self, connection: ServerConnection) -> list[str]:
        """The sort orders of the runs of this job's workflow, in order (jobs waiting to be
        sent are sent first)."""
        connection.jobs.flush()
        return spawn.existing_sort_orders(client=connection.client)

    # -- images -------------------------------------------------------------------------------

    def get_omni_image(self, param: dict[str, Any]) -> Image:
        """The image of an ``Image`` input (file store or User Data; OMNI, AIM or ISQ),
        fetched into the working folder: an ``omni.Image`` with memory-mapped pixels
        (``runyard.task.CurrentJob.download_image``)."""
        return self._job.download_image(param)

    def upload_omni_output(self, image: Image) -> dict[str, Any]:
        """Store an ``omni.Image`` in the file store (its ``.omni`` and ``.raw`` files; an
        image never saved is saved in the working folder first); its ``Image`` value
        (``runyard.task.CurrentJob.upload_image``)."""
        return self._job.upload_image(image)


def get_xf_userdata_token(connection: ServerConnection, scopes: Sequence[tuple[str, str]]) -> str:
    """A short-lived token for ``("list"|"read"|"write", virtualpath)`` scopes of User Data
    (``runyard.task.userdata.userdata_token``)."""
    from runyard.task import userdata

    return userdata.userdata_token(scopes, client=connection.client)


def update_xf_job(
    connection: ServerConnection, job: Mapping[str, Any], state: str = "Done"
) -> Mapping[str, Any]:
    """Change the state of a job this job spawned (e.g. ``Obsolete`` -> ``Done``, which
    creates its followers). Sent in the connection's batch, after the jobs spawned before
    it: the job as it is then (a mapping, read from the server when first read). A job in
    ``state`` already is left as it is."""
    return connection.jobs.set_state(job, state)


__all__ = [
    "ActivityLogLevel",
    "ServerConnection",
    "TemporaryWorkingDirectory",
    "XFWorkerArguments",
    "XFWorkerJob",
    "get_xf_userdata_token",
    "update_xf_job",
]
